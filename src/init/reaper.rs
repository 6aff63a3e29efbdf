//! Reaps the zombies PID 1 inherits. SIGCHLD is blocked before any thread
//! starts (threads inherit the mask) and one thread waits for it, so no
//! other thread is ever interrupted by it. The appliance itself spawns no
//! processes it waits for; any child of PID 1 is reaped here.

use std::mem::MaybeUninit;

fn sigchld_set() -> libc::sigset_t {
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

/// Must run before any other thread exists.
pub fn block_sigchld() {
    let set = sigchld_set();
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

pub fn spawn() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(|| {
            let set = sigchld_set();
            loop {
                let mut signal = 0;
                unsafe { libc::sigwait(&set, &mut signal) };
                reap_all();
            }
        })
        .map(|_| ())
}

fn reap_all() {
    let mut status = 0;
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}
