//! Whole-configuration checks run at commit: things no single line can
//! know, such as overlapping subnets, unknown interfaces, duplicate VNIs.
//! Each element owns its checks; a commit runs only those of the elements
//! whose inputs changed.

use crate::config::{Config, ELEMENTS};

/// Every problem of `config`, one `%` message each; empty when it is valid.
pub fn validate(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for element in ELEMENTS {
        element.check(config, &mut problems);
    }
    problems
}

/// The problems of `new`, given that `old` passed every check: elements
/// whose inputs did not change are not checked again.
pub fn validate_change(old: &Config, new: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for element in ELEMENTS.iter().filter(|e| !e.unchanged(old, new)) {
        element.check(new, &mut problems);
    }
    problems
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::parse_config;

    fn problems(text: &str) -> Vec<String> {
        let (config, errors) = parse_config(text);
        assert_eq!(errors, []);
        validate(&config)
    }

    #[test]
    fn a_sound_configuration_passes() {
        let text = "interface eth0\n ip address 10.0.0.1/24\ninterface eth0.10\n \
                    encapsulation dot1q 10\n ip address 10.0.1.1/24\ninterface vxlan1\n vni 1\n \
                    source-interface eth0\nip route 0.0.0.0/0 eth0\n";
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let p = problems(
            "interface eth0\n ip address 10.0.0.1/16\ninterface eth1\n ip address 10.1.0.1/24\n \
             ip address 10.0.9.1/24\n ipv6 address 2001:db8::1/64\ninterface eth2\n \
             ipv6 address 2001:db8::2/64\n",
        );
        assert_eq!(
            p,
            [
                "% 10.0.9.1/24 on eth1 overlaps 10.0.0.1/16 on eth0",
                "% 2001:db8::2/64 on eth2 overlaps 2001:db8::1/64 on eth1"
            ]
        );
    }

    #[test]
    fn unknown_interfaces_and_duplicates_are_refused() {
        let p = problems(
            "interface eth0.5\ninterface eth1\ninterface eth1.5\ninterface eth1.6\n \
             encapsulation dot1q 5\ninterface vxlan1\n vni 9\n source-interface eth9\n\
             interface vxlan2\n vni 9\n source-interface eth1\ninterface vxlan3\n\
             ip route 10.0.0.0/8 eth7\nipv6 route 2001:db8::/32 eth8\n",
        );
        assert_eq!(
            p,
            [
                "% eth0.5: parent interface eth0 is not configured",
                "% eth1.5 and eth1.6 both use VLAN 5 on eth1",
                "% vxlan1: source-interface eth9 is not configured",
                "% vxlan1 and vxlan2 both use VNI 9",
                "% vxlan2: source-interface eth1 has no IPv4 address",
                "% vxlan3: no vni configured",
                "% ip route 10.0.0.0/8: interface eth7 is not configured",
                "% ipv6 route 2001:db8::/32: interface eth8 is not configured",
            ]
        );
    }
}
