//! Upgrade by image swap: `install image SOURCE` fetches a signed image
//! (image-builder writes it as upgrade.img), checks it whole and signed by
//! the key built into this image before anything is written, and writes it
//! into the slot that did not boot, on trial; `install activate` (or
//! `reload`) boots it. `show install` lists the slots and the last failed
//! upgrade. The boot side (trial, fallback) is in `trial`.

mod download;
mod esp;
pub mod trial;

use boot_image::artifact::{self, SignatureCheck};
use boot_image::slot;
use download::Source;
use esp::SlotState;
use kernel_bypass::local::LocalStack;
use shell::ShellBuilder;
use std::fmt::Write;
use std::sync::Arc;
use tokio::runtime::Handle;

/// The public half of the key images must be signed with. Development
/// builds trust the development key (keys/README.md); a vendor build
/// replaces the file.
const TRUSTED_KEY: &[u8; 32] = include_bytes!("../../keys/image-signing.pub");

pub fn register_commands(
    builder: ShellBuilder,
    stack: LocalStack,
    runtime: Handle,
    reload: Option<Arc<dyn Fn() + Send + Sync>>,
) -> Result<ShellBuilder, grammar::SyntaxError> {
    builder
        .exec(
            "install image WORD$source [allow-unsigned]",
            &[
                "Install a software image into the inactive boot slot",
                "Install a signed image (upgrade.img of the image builder)",
                "http://A.B.C.D[:PORT]/PATH, or an absolute file path on the appliance",
                "Development only: accept an image not signed by the trusted key (its SHA-256 is still checked)",
            ],
            move |args| {
                let source = args.text("source").unwrap_or_default().to_string();
                let check = match args.has("allow-unsigned") {
                    true => SignatureCheck::Skipped,
                    false => SignatureCheck::Required,
                };
                let (stack, runtime) = (stack.clone(), runtime.clone());
                let (done, result) = std::sync::mpsc::channel();
                runtime.spawn(async move {
                    let _ = done.send(install(&stack, &source, check).await);
                });
                result
                    .recv()
                    .unwrap_or_else(|_| Err("the install was stopped".into()))
                    .map_err(|problem| format!("% install: {problem}"))
            },
        )?
        .exec(
            "install activate",
            &[
                "Install a software image into the inactive boot slot",
                "Reload into the image installed on trial",
            ],
            move |_| {
                let reload = reload
                    .as_ref()
                    .ok_or("% install: this appliance cannot reload itself (hosted mode)")?;
                let (booted, slots) = slots_now().map_err(|problem| format!("% install: {problem}"))?;
                let waiting = slots
                    .iter()
                    .find(|s| s.slot != booted && s.entry.is_some_and(|e| e.on_trial()))
                    .ok_or("% install: no image is waiting on trial; use install image first")?;
                println!(
                    "Reloading into release {} in slot {} (on trial)",
                    waiting.release,
                    waiting.slot.to_ascii_uppercase()
                );
                reload();
                Ok(String::new())
            },
        )?
        .show(
            "install",
            &["Boot slots, their releases and the last failed upgrade"],
            |_| show_install(),
        )?
        .show(
            "boot",
            &["Boot slots, their releases and the last failed upgrade"],
            |_| show_install(),
        )
}

/// The slot this image booted from, or why there is none.
fn booted_slot() -> Result<char, String> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    slot::booted_slot(&cmdline).ok_or_else(|| {
        "this appliance was not started from a boot slot \
         (hosted mode, or QEMU's -kernel boot: boot the disk through UEFI)"
            .to_string()
    })
}

/// The booted slot and what every slot holds now.
fn slots_now() -> Result<(char, Vec<SlotState>), String> {
    let booted = booted_slot()?;
    Ok((booted, esp::mount()?.slots()))
}

async fn install(
    stack: &LocalStack,
    source: &str,
    check: SignatureCheck,
) -> Result<String, String> {
    let booted = booted_slot()?;
    let target = slot::other(booted);
    let source = Source::parse(source)?;
    let bytes = download::fetch(stack, &source).await?;
    let opened = artifact::open(&bytes, TRUSTED_KEY, check)
        .map_err(|refusal| format!("{refusal}; nothing was written"))?;
    let image = &opened.image;
    trial::forget_failure();
    esp::mount()?.install(target, image)?;
    let mut out = String::new();
    let _ = writeln!(out, "Fetched {} bytes", bytes.len());
    let _ = writeln!(
        out,
        "SHA-256 {} verified{}",
        hex(opened.sha256),
        match check {
            SignatureCheck::Required => ", signed by the trusted key",
            SignatureCheck::Skipped => " (signature not checked: allow-unsigned)",
        }
    );
    let _ = writeln!(
        out,
        "Release {} installed in slot {} on trial ({} boots to prove itself)",
        image.release,
        target.to_ascii_uppercase(),
        slot::TRIAL_TRIES
    );
    let _ = write!(
        out,
        "Type \"install activate\" or \"reload\" to boot it; slot {} returns if it fails",
        booted.to_ascii_uppercase()
    );
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn show_install() -> String {
    match slots_now() {
        Ok((booted, slots)) => render(&slots, booted),
        Err(problem) => format!("% install: {problem}\n"),
    }
}

/// IOS-like table: one line a slot, then the last failure if any.
fn render(slots: &[SlotState], booted: char) -> String {
    // The loader boots the highest-versioned entry that still has tries.
    let next = slots
        .iter()
        .filter(|s| s.entry.is_some_and(|e| !e.is_bad()))
        .max_by_key(|s| s.version)
        .map(|s| s.slot);
    let mut out = String::from("Slot  Release               Version  State\n");
    for state in slots {
        let mut words: Vec<String> = Vec::new();
        if state.slot == booted {
            words.push("running".into());
        }
        match state.entry {
            None => words.push("empty".into()),
            Some(entry) if entry.is_bad() => words.push("failed (no tries left)".into()),
            Some(entry) => {
                if let Some(tries) = entry.tries.filter(|_| entry.on_trial()) {
                    words.push(format!(
                        "on trial ({} of {} tries left)",
                        tries.left,
                        tries.left + tries.done
                    ));
                } else {
                    words.push("good".into());
                }
            }
        }
        if next == Some(state.slot) {
            words.push("boots next".into());
        }
        let _ = writeln!(
            out,
            "{:<5} {:<21} {:<8} {}",
            state.slot.to_ascii_uppercase(),
            state.release,
            state.version,
            words.join(", ")
        );
    }
    match trial::last_failure(slots, booted) {
        Some(failure) => {
            let _ = writeln!(out, "Last failed upgrade: {failure}");
        }
        None => out.push_str("No failed upgrade on record\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot_image::slot::EntryName;

    #[test]
    fn the_trusted_key_is_the_development_keys_public_half() {
        let private = include_bytes!("../../keys/development-signing-key.pk8");
        assert_eq!(&artifact::public_key(private).unwrap(), TRUSTED_KEY);
    }

    #[test]
    fn show_install_names_the_running_the_trial_and_the_next_slot() {
        let slots = [
            SlotState {
                slot: 'a',
                entry: EntryName::parse("gatehouse-a.conf"),
                version: 1,
                release: "0.1.0".into(),
            },
            SlotState {
                slot: 'b',
                entry: EntryName::parse("gatehouse-b+3.conf"),
                version: 2,
                release: "0.2.0".into(),
            },
        ];
        let text = render(&slots, 'a');
        assert!(
            text.contains("A     0.1.0                 1        running, good\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "B     0.2.0                 2        on trial (3 of 3 tries left), boots next\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("No failed upgrade on record\n"));
    }
}
