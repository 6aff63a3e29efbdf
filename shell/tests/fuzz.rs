//! Fuzzing the session with proptest: random lines and token soups (real
//! words of every mode mixed with junk) never make a session panic, through
//! the line entry point or the byte-stream front end.

use proptest::prelude::*;
use shell::{run_stream_with, Session, ShellBuilder, StreamOptions};

const SOUP: &[&str] = &[
    "enable",
    "disable",
    "conf",
    "configure",
    "terminal",
    "t",
    "interface",
    "eth0",
    "eth0.7",
    "vxlan3",
    "ip",
    "address",
    "10.0.0.1/24",
    "route",
    "0.0.0.0/0",
    "no",
    "hostname",
    "commit",
    "confirmed",
    "1",
    "abort",
    "end",
    "exit",
    "do",
    "show",
    "running-config",
    "configuration",
    "commit",
    "list",
    "rollback",
    "last",
    "write",
    "memory",
    "|",
    "include",
    "exclude",
    "begin",
    "count",
    "section",
    "length",
    "clock",
    "range",
    "-",
    "eth1,",
    "default",
    "255.255.0.0",
    "secondary",
    "(",
    "[",
    "?",
    "\"",
    "\"a b\"",
    "vni",
    "remote",
    "mtu",
    "99999999999999999999999",
    "-1",
    "",
    "\u{1a}",
    "\u{0}",
    "é",
    "username",
    "secret",
    "privilege",
    "banner",
    "motd",
];

fn soup_line() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(SOUP), 0..7).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn sessions_never_panic(
        lines in proptest::collection::vec(prop_oneof![3 => soup_line(), 1 => any::<String>()], 1..25)
    ) {
        let shell = ShellBuilder::new().build().0;
        let mut session = Session::new(shell, "fuzz", true);
        for line in &lines {
            let _ = session.help(line);
            let _ = session.complete(line);
            let reply = session.execute(line);
            if reply.quit {
                session = Session::new(session.shell().clone(), "fuzz", true);
            }
        }
    }

    #[test]
    fn the_byte_stream_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        echo in any::<bool>(),
    ) {
        let shell = ShellBuilder::new().build().0;
        let mut session = Session::new(shell, "fuzz", false);
        let mut output = Vec::new();
        let options = StreamOptions { echo };
        prop_assert!(run_stream_with(&mut session, bytes.as_slice(), &mut output, options).is_ok());
    }
}
