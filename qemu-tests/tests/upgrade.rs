//! Upgrade by image swap, as an operator does it at the serial console of
//! an image booted through UEFI: `install image http://...` from a plain
//! HTTP server in a namespace host, `install activate`, and the box comes
//! back on the new release; a damaged or foreign-signed image is refused
//! before anything is written; an image whose init exits spends its three
//! trial boots and the loader returns to the old slot by itself, which the
//! console says at login.

use qemu_tests::upgrade::{self, HttpServer};
use qemu_tests::{Appliance, BootOptions, BOOT_TIMEOUT};
use std::time::{Duration, Instant};

const APPLIANCE: &str = "10.77.0.1";
const SERVER: &str = "10.77.0.2";
const PORT: u16 = 8000;
/// Fetching about 18 MiB over the appliance's own stack under TCG, then
/// writing it to the ESP.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// A UEFI-booted appliance with one namespace host serving HTTP on its NIC.
fn appliance_with_server(name: &str) -> (Appliance, HttpServer) {
    let mut appliance = Appliance::boot(BootOptions {
        hosts: 1,
        uefi: true,
        allow_reboot: true,
        ..BootOptions::default()
    })
    .expect("starting QEMU");
    let (messages, _) = appliance.wait_for_prompt().unwrap();
    assert!(messages.contains("booted from slot A"), "{messages}");
    appliance.hosts[0]
        .configure(&format!("{SERVER}/24"), APPLIANCE)
        .unwrap();
    for line in [
        "enable",
        "configure terminal",
        "interface eth0",
        &format!("ip address {APPLIANCE}/24"),
        "commit",
        "end",
    ] {
        let output = appliance.command(line).unwrap();
        assert!(!output.contains('%'), "{line}: {output}");
    }
    let folder = std::env::temp_dir().join(format!("gh-upgrade-{}-{name}", std::process::id()));
    let server = HttpServer::start(&appliance.hosts[0], SERVER, PORT, &folder).unwrap();
    (appliance, server)
}

fn install(appliance: &mut Appliance, file: &str) -> String {
    let line = format!("install image http://{SERVER}:{PORT}/{file}");
    appliance.console.command(&line, INSTALL_TIMEOUT).unwrap()
}

#[test]
fn refuses_damaged_and_foreign_images_then_installs_a_signed_one_and_reboots_into_it() {
    let newer = upgrade::release_image("0.9.0-upgrade").unwrap();
    let signed = std::fs::read(&newer.upgrade).unwrap();
    let (mut appliance, server) = appliance_with_server("signed");
    let before = appliance.command("show install").unwrap();

    let mut damaged = signed.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    server.put("damaged.img", &damaged).unwrap();
    let refused = install(&mut appliance, "damaged.img");
    assert!(
        refused.contains("% install: the image is damaged or was altered (SHA-256 mismatch); nothing was written"),
        "{refused}"
    );
    server
        .put(
            "foreign.img",
            &upgrade::signed_by_a_stranger(&signed).unwrap(),
        )
        .unwrap();
    let refused = install(&mut appliance, "foreign.img");
    assert!(
        refused
            .contains("% install: the image is not signed by a trusted key; nothing was written"),
        "{refused}"
    );
    let missing = install(&mut appliance, "missing.img");
    assert!(
        missing.contains("% install: the server answered 404"),
        "{missing}"
    );
    assert_eq!(appliance.command("show install").unwrap(), before);

    server.put("upgrade.img", &signed).unwrap();
    let started = Instant::now();
    let installed = install(&mut appliance, "upgrade.img");
    let fetched = started.elapsed();
    assert!(
        installed.contains("signed by the trusted key")
            && installed.contains("Release 0.9.0-upgrade installed in slot B on trial"),
        "{installed}"
    );
    let slots = appliance.command("show install").unwrap();
    assert!(
        slots.contains("0.9.0-upgrade         2        on trial (3 of 3 tries left), boots next"),
        "{slots}"
    );

    let activated = Instant::now();
    appliance.console.send_line("install activate").unwrap();
    let messages = appliance
        .console
        .expect(qemu_tests::console::PROMPT, BOOT_TIMEOUT);
    let (messages, rebooted) = (messages.unwrap(), activated.elapsed());
    eprintln!(
        "install image ({} MiB over HTTP): {:.1} s; install activate to the new prompt (UEFI, TCG): {:.1} s",
        signed.len() >> 20,
        fetched.as_secs_f64(),
        rebooted.as_secs_f64()
    );
    assert!(messages.contains("booted from slot B"), "{messages}");
    assert!(
        messages.contains("slot B passed its trial boot: gatehouse-b+2-1.conf marked good"),
        "{messages}"
    );
    let version = appliance.command("show version").unwrap();
    assert!(
        version.contains("Gatehouse edge gateway, version 0.9.0-upgrade"),
        "{version}"
    );
    let slots = appliance.command("show install").unwrap();
    assert!(
        slots.contains("B     0.9.0-upgrade         2        running, good, boots next"),
        "{slots}"
    );
}

#[test]
fn an_upgrade_whose_init_exits_falls_back_to_the_old_slot_by_itself() {
    let broken = upgrade::upgrade_whose_init_exits(qemu_tests::image()).unwrap();
    let (mut appliance, server) = appliance_with_server("broken");
    server.put("broken.img", &broken).unwrap();
    let installed = install(&mut appliance, "broken.img");
    assert!(
        installed.contains("Release 0.9.1-broken installed in slot B on trial"),
        "{installed}"
    );
    appliance.console.send_line("install activate").unwrap();
    // Three tries, each a kernel panic as the new init exits.
    for _ in 0..3 {
        appliance
            .console
            .expect("Attempted to kill init", BOOT_TIMEOUT)
            .unwrap();
    }
    appliance.accept_crashes_so_far();
    let (messages, _) = appliance.wait_for_prompt().unwrap();
    appliance.accept_crashes_so_far();
    assert!(messages.contains("booted from slot A"), "{messages}");
    assert!(
        messages.contains(
            "% the upgrade to 0.9.1-broken in slot B failed in 3 boots \
             (it crashed or hung before the appliance started); running slot A"
        ),
        "{messages}"
    );
    let slots = appliance
        .command("enable")
        .and_then(|_| appliance.command("show install"));
    let slots = slots.unwrap();
    assert!(slots.contains("running, good, boots next"), "{slots}");
    assert!(
        slots.contains("0.9.1-broken          2        failed (no tries left)"),
        "{slots}"
    );
    assert!(
        slots.contains("Last failed upgrade: the upgrade to 0.9.1-broken"),
        "{slots}"
    );
}
