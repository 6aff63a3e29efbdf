//! The names IOS takes and shows for ports and ICMP types in access-list
//! entries (`eq www`, `icmp any any echo`): typed, they mean their
//! numbers; in the running config, a number that has a name is written
//! by its name, as IOS writes it.

use super::access_lists::{AclProtocol, Family};

/// TCP port names (IOS's list).
const TCP_PORTS: &[(&str, u16)] = &[
    ("bgp", 179),
    ("chargen", 19),
    ("cmd", 514),
    ("daytime", 13),
    ("discard", 9),
    ("domain", 53),
    ("echo", 7),
    ("exec", 512),
    ("finger", 79),
    ("ftp", 21),
    ("ftp-data", 20),
    ("gopher", 70),
    ("hostname", 101),
    ("ident", 113),
    ("irc", 194),
    ("klogin", 543),
    ("kshell", 544),
    ("login", 513),
    ("lpd", 515),
    ("nntp", 119),
    ("pop2", 109),
    ("pop3", 110),
    ("smtp", 25),
    ("ssh", 22),
    ("sunrpc", 111),
    ("telnet", 23),
    ("time", 37),
    ("uucp", 540),
    ("whois", 43),
    ("www", 80),
];

/// UDP port names (IOS's list).
const UDP_PORTS: &[(&str, u16)] = &[
    ("biff", 512),
    ("bootpc", 68),
    ("bootps", 67),
    ("discard", 9),
    ("dnsix", 195),
    ("domain", 53),
    ("echo", 7),
    ("isakmp", 500),
    ("mobile-ip", 434),
    ("nameserver", 42),
    ("netbios-dgm", 138),
    ("netbios-ns", 137),
    ("netbios-ss", 139),
    ("non500-isakmp", 4500),
    ("ntp", 123),
    ("rip", 520),
    ("snmp", 161),
    ("snmptrap", 162),
    ("sunrpc", 111),
    ("syslog", 514),
    ("tacacs", 49),
    ("talk", 517),
    ("tftp", 69),
    ("time", 37),
    ("who", 513),
    ("xdmcp", 177),
];

/// ICMP message names: (name, type, code if the name fixes one).
const ICMP_TYPES: &[(&str, u8, Option<u8>)] = &[
    ("echo-reply", 0, None),
    ("unreachable", 3, None),
    ("net-unreachable", 3, Some(0)),
    ("host-unreachable", 3, Some(1)),
    ("protocol-unreachable", 3, Some(2)),
    ("port-unreachable", 3, Some(3)),
    ("packet-too-big", 3, Some(4)),
    ("source-quench", 4, None),
    ("redirect", 5, None),
    ("echo", 8, None),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("time-exceeded", 11, None),
    ("ttl-exceeded", 11, Some(0)),
    ("parameter-problem", 12, None),
    ("timestamp-request", 13, None),
    ("timestamp-reply", 14, None),
];

/// ICMPv6 message names.
const ICMPV6_TYPES: &[(&str, u8, Option<u8>)] = &[
    ("unreachable", 1, None),
    ("packet-too-big", 2, None),
    ("time-exceeded", 3, None),
    ("parameter-problem", 4, None),
    ("echo-request", 128, None),
    ("echo-reply", 129, None),
    ("router-solicitation", 133, None),
    ("router-advertisement", 134, None),
    ("nd-ns", 135, None),
    ("nd-na", 136, None),
];

fn ports_of(protocol: AclProtocol) -> &'static [(&'static str, u16)] {
    match protocol {
        AclProtocol::Tcp => TCP_PORTS,
        AclProtocol::Udp => UDP_PORTS,
        _ => &[],
    }
}

fn icmp_of(family: Family) -> &'static [(&'static str, u8, Option<u8>)] {
    match family {
        Family::Ipv4 => ICMP_TYPES,
        Family::Ipv6 => ICMPV6_TYPES,
    }
}

/// The port `name` stands for under `protocol`.
pub fn port_number(protocol: AclProtocol, name: &str) -> Option<u16> {
    ports_of(protocol)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}

/// A port as the running config writes it: its name, else its number.
pub fn port_word(protocol: AclProtocol, port: u16) -> String {
    match ports_of(protocol).iter().find(|(_, p)| *p == port) {
        Some((name, _)) => name.to_string(),
        None => port.to_string(),
    }
}

/// The ICMP type and code `name` stands for in `family`'s lists.
pub fn icmp_number(family: Family, name: &str) -> Option<(u8, Option<u8>)> {
    let found = icmp_of(family).iter().find(|(n, _, _)| *n == name);
    found.map(|(_, kind, code)| (*kind, *code))
}

/// An ICMP type and code as the running config writes them.
pub fn icmp_words(family: Family, (kind, code): (u8, Option<u8>)) -> String {
    let named = icmp_of(family)
        .iter()
        .find(|(_, k, c)| *k == kind && *c == code);
    match (named, code) {
        (Some((name, _, _)), _) => name.to_string(),
        (None, Some(code)) => format!("{kind} {code}"),
        (None, None) => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_go_both_ways() {
        assert_eq!(port_number(AclProtocol::Tcp, "www"), Some(80));
        assert_eq!(port_number(AclProtocol::Udp, "www"), None, "www is tcp's");
        assert_eq!(port_word(AclProtocol::Udp, 53), "domain");
        assert_eq!(port_word(AclProtocol::Tcp, 8080), "8080");
        assert_eq!(
            icmp_number(Family::Ipv4, "packet-too-big"),
            Some((3, Some(4)))
        );
        assert_eq!(icmp_words(Family::Ipv4, (3, Some(4))), "packet-too-big");
        assert_eq!(icmp_words(Family::Ipv4, (3, Some(9))), "3 9");
        assert_eq!(icmp_words(Family::Ipv6, (128, None)), "echo-request");
        // Every name reads back as itself.
        for family in [Family::Ipv4, Family::Ipv6] {
            for (name, kind, code) in icmp_of(family) {
                assert_eq!(icmp_words(family, (*kind, *code)), *name);
            }
        }
        for protocol in [AclProtocol::Tcp, AclProtocol::Udp] {
            for (name, port) in ports_of(protocol) {
                assert_eq!(port_word(protocol, *port), *name);
            }
        }
    }
}
