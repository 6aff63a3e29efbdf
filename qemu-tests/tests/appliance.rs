//! The image booted in QEMU (TCG): boot, power, the config partition, UEFI
//! boot of slot A, IPv4 and IPv6 forwarding between namespace hosts
//! configured at the console, a saved config surviving `reload`, and the
//! factory configuration's DHCP on QEMU's user network.
//! Every Appliance checks on drop that its console never showed a panic.

use qemu_tests::{Appliance, BootOptions, ConfigDisk, NewSlot, COMMAND_TIMEOUT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MOUNTED: &str = "gatehouse: config partition /dev/vda2 mounted on /config";
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

fn boot(options: BootOptions) -> Appliance {
    Appliance::boot(options).expect("starting QEMU")
}

/// `reload` and `poweroff` are privileged EXEC commands: enable, then type it.
fn power(appliance: &mut Appliance, command: &str, announcement: &str) {
    appliance.command("enable").unwrap();
    appliance.console.send_line(command).unwrap();
    appliance
        .console
        .expect(announcement, COMMAND_TIMEOUT)
        .unwrap();
}

#[test]
fn boots_to_the_prompt_and_powers_off_cleanly() {
    // One NIC, so the virtio_net chain must be found and loaded.
    let mut appliance = boot(BootOptions {
        hosts: 1,
        ..BootOptions::default()
    });
    let (messages, elapsed) = appliance.wait_for_prompt().unwrap();
    eprintln!("boot to prompt under TCG: {:.2} s", elapsed.as_secs_f64());
    assert!(messages.contains(MOUNTED), "boot messages: {messages}");
    assert!(messages.contains("virtio_net"), "boot messages: {messages}");
    assert!(messages.contains("softdog"), "boot messages: {messages}");
    assert!(
        !messages.contains("no watchdog"),
        "boot messages: {messages}"
    );

    power(&mut appliance, "poweroff", "powering off");
    assert!(appliance.wait_for_exit(EXIT_TIMEOUT).unwrap());
    assert!(
        appliance.config_partition().is_clean().unwrap(),
        "poweroff left the config partition unclean"
    );
}

#[test]
fn reload_reboots_and_keeps_the_config_partition() {
    let startup = "hostname edge-a\n";
    let mut appliance = boot(BootOptions {
        config: ConfigDisk::WithStartupConfig(startup.into()),
        allow_reboot: true,
        ..BootOptions::default()
    });
    let (first, _) = appliance.wait_for_prompt().unwrap();
    assert!(first.contains(MOUNTED), "boot messages: {first}");

    power(&mut appliance, "reload", "rebooting");
    let (second, _) = appliance.wait_for_prompt().unwrap();
    assert!(second.contains(MOUNTED), "second boot: {second}");
    // The startup config was read again: its hostname is the prompt.
    assert!(
        appliance
            .console
            .transcript()
            .trim_end()
            .ends_with("edge-a>"),
        "{}",
        appliance.console.transcript()
    );

    power(&mut appliance, "poweroff", "powering off");
    assert!(appliance.wait_for_exit(EXIT_TIMEOUT).unwrap());
    let partition = appliance.config_partition();
    assert!(partition.is_clean().unwrap());
    assert_eq!(
        partition.file("startup-config").unwrap().as_deref(),
        Some(startup)
    );
}

#[test]
fn corrupted_config_partition_still_boots_with_a_clear_message() {
    let mut appliance = boot(BootOptions {
        config: ConfigDisk::Corrupted,
        ..BootOptions::default()
    });
    let (messages, _) = appliance.wait_for_prompt().unwrap();
    assert!(
        messages.contains("WARNING: config partition /dev/vda2 could not be mounted"),
        "boot messages: {messages}"
    );
    assert!(
        messages.contains("temporary filesystem"),
        "boot messages: {messages}"
    );
    // The console still answers.
    appliance.command("").unwrap();
}

#[test]
fn uefi_firmware_boots_slot_a_from_the_disk() {
    let mut appliance = boot(BootOptions {
        uefi: true,
        ..BootOptions::default()
    });
    let (messages, elapsed) = appliance.wait_for_prompt().unwrap();
    eprintln!(
        "UEFI boot to prompt under TCG: {:.2} s",
        elapsed.as_secs_f64()
    );
    assert!(
        messages.contains("gatehouse: booted from slot A"),
        "boot messages: {messages}"
    );
    assert!(messages.contains(MOUNTED), "boot messages: {messages}");
}

#[test]
fn uefi_falls_back_to_slot_a_when_a_newer_slot_b_fails() {
    let mut appliance = boot(BootOptions {
        uefi: true,
        allow_reboot: true,
        new_slot_b: Some(NewSlot::Failing),
        ..BootOptions::default()
    });
    // systemd-boot tries the newer slot B once; its kernel finds no init.
    appliance
        .console
        .expect("Kernel panic", qemu_tests::BOOT_TIMEOUT)
        .unwrap();
    appliance.accept_crashes_so_far();
    let (messages, _) = appliance.wait_for_prompt().unwrap();
    assert!(
        messages.contains("gatehouse: booted from slot A"),
        "boot messages: {messages}"
    );
    power(&mut appliance, "poweroff", "powering off");
    assert!(appliance.wait_for_exit(EXIT_TIMEOUT).unwrap());
    // The try was counted: slot B's entry is now marked bad.
    assert_eq!(
        appliance.boot_entries().unwrap(),
        ["gatehouse-a.conf", "gatehouse-b+0-3.conf"]
    );
}

#[test]
fn uefi_boots_a_newer_slot_b_on_trial_and_marks_it_good() {
    let mut appliance = boot(BootOptions {
        uefi: true,
        new_slot_b: Some(NewSlot::Working),
        ..BootOptions::default()
    });
    let (messages, _) = appliance.wait_for_prompt().unwrap();
    assert!(
        messages.contains("gatehouse: booted from slot B"),
        "boot messages: {messages}"
    );
    assert!(
        messages.contains("slot B passed its trial boot: gatehouse-b+2-1.conf marked good"),
        "boot messages: {messages}"
    );
    power(&mut appliance, "poweroff", "powering off");
    assert!(appliance.wait_for_exit(EXIT_TIMEOUT).unwrap());
    assert_eq!(
        appliance.boot_entries().unwrap(),
        ["gatehouse-a.conf", "gatehouse-b.conf"]
    );
}

/// Types the lines one by one; none may be refused.
fn configure(appliance: &mut Appliance, lines: &[&str]) {
    for line in lines {
        let output = appliance.command(line).unwrap();
        assert!(!output.contains('%'), "`{line}` was refused: {output}");
    }
}

#[test]
fn committed_console_config_routes_ipv4_and_ipv6_between_two_hosts() {
    let mut appliance = boot(BootOptions {
        hosts: 2,
        ..BootOptions::default()
    });
    for (host, address, gateway) in [
        (0, "10.1.0.2/24", "10.1.0.1"),
        (1, "10.2.0.2/24", "10.2.0.1"),
        (0, "2001:db8:1::2/64", "2001:db8:1::1"),
        (1, "2001:db8:2::2/64", "2001:db8:2::1"),
    ] {
        appliance.hosts[host].configure(address, gateway).unwrap();
    }
    // A network behind host 1, reached through the appliance's static route.
    appliance.hosts[1]
        .ip(&["addr", "add", "10.3.0.1/32", "dev", "lo"])
        .unwrap();
    appliance.wait_for_prompt().unwrap();
    configure(
        &mut appliance,
        &[
            "enable",
            "configure terminal",
            "interface eth0",
            "ip address 10.1.0.1/24",
            "ipv6 address 2001:db8:1::1/64",
            "exit",
            "interface eth1",
            "ip address 10.2.0.1/24",
            "ipv6 address 2001:db8:2::1/64",
            "exit",
            "ip route 10.3.0.0/24 10.2.0.2",
            "commit",
            "end",
        ],
    );
    // (A host's IPv6 address may still be tentative at first: ping retries.)
    for (from, to) in [
        (0, "10.2.0.2"),
        (0, "10.3.0.1"),
        (1, "10.1.0.2"),
        (0, "2001:db8:2::2"),
        (1, "2001:db8:1::1"),
    ] {
        let ping = appliance.hosts[from]
            .run("ping", &["-c", "1", "-w", "15", to])
            .unwrap();
        assert!(
            ping.status.success(),
            "host {from} cannot ping {to}: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
    }
}

#[test]
fn write_memory_then_reload_comes_back_with_the_same_running_config() {
    let mut appliance = boot(BootOptions {
        hosts: 1,
        allow_reboot: true,
        ..BootOptions::default()
    });
    appliance.wait_for_prompt().unwrap();
    configure(
        &mut appliance,
        &[
            "enable",
            "configure terminal",
            "interface eth0",
            "ip address 10.1.0.1/24",
            "exit",
            "ip route 10.3.0.0/24 10.1.0.2",
            "commit",
            "end",
        ],
    );
    let before = appliance.command("show running-config").unwrap();
    assert!(
        before.contains("ip address 10.1.0.1 255.255.255.0"),
        "{before}"
    );
    configure(&mut appliance, &["write memory"]);

    power(&mut appliance, "reload", "rebooting");
    appliance.wait_for_prompt().unwrap();
    configure(&mut appliance, &["enable"]);
    let after = appliance.command("show running-config").unwrap();
    assert_eq!(before, after);

    power(&mut appliance, "poweroff", "powering off");
    assert!(appliance.wait_for_exit(EXIT_TIMEOUT).unwrap());
    let saved = appliance.config_partition().file("startup-config").unwrap();
    assert!(saved.is_some_and(|text| text.contains("ip address 10.1.0.1 255.255.255.0")));
}

/// The status page through QEMU's port forward, once the guest answers
/// (before that, QEMU accepts and closes the connection).
fn status_page(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: gatehouse\r\n\r\n")
        .ok()?;
    let mut page = String::new();
    stream.read_to_string(&mut page).ok()?;
    page.contains("200").then_some(page)
}

#[test]
fn the_factory_configuration_takes_a_dhcp_lease_from_qemus_user_network() {
    // A free port of this host for the forward.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut appliance = boot(BootOptions {
        user_net_http: Some(port),
        ..BootOptions::default()
    });
    let (messages, _) = appliance.wait_for_prompt().unwrap();
    assert!(
        messages.contains("starting with the factory configuration"),
        "boot messages: {messages}"
    );
    // No typing: the status page answers once the lease is applied.
    let deadline = Instant::now() + Duration::from_secs(120);
    let page = loop {
        if let Some(page) = status_page(port) {
            break page;
        }
        assert!(Instant::now() < deadline, "no status page on port {port}");
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(page.contains("gatehouse"), "{page}");
    configure(&mut appliance, &["enable"]);
    let lease = appliance.command("show dhcp lease").unwrap();
    assert!(lease.contains("Temp IP addr: 10.0.2.15"), "{lease}");
    assert!(
        lease.contains("Temp default-gateway addr: 10.0.2.2"),
        "{lease}"
    );
    let running = appliance.command("show running-config").unwrap();
    assert!(running.contains("ip address dhcp"), "{running}");
}
