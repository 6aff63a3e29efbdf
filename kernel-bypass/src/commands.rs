//! The dataplane's show commands, declared here beside what they show so
//! that the binary registers them without naming any: `show SYNTAX` with
//! one help text per token and the function that renders it.

use crate::dataplane::Dataplane;
use grammar::Args;

/// A `show` command whose text the dataplane renders.
pub struct ShowCommand {
    /// What follows `show`.
    pub syntax: &'static str,
    pub help: &'static [&'static str],
    pub render: fn(&Dataplane, &Args) -> String,
}

pub const SHOWS: &[ShowCommand] = &[
    ShowCommand {
        syntax: "interfaces [IFNAME$name]",
        help: &[
            "Interface status, addresses and counters",
            "Only this interface",
        ],
        render: |dp, args| dp.show_interfaces(args.text("name")),
    },
    ShowCommand {
        syntax: "ip interface brief",
        help: &[
            "IP information",
            "IP interface status and configuration",
            "Brief summary of IP status and configuration",
        ],
        render: |dp, _| dp.show_ip_interface_brief(),
    },
    ShowCommand {
        syntax: "ipv6 interface brief",
        help: &[
            "IPv6 information",
            "IPv6 interface status and configuration",
            "Brief summary of IPv6 status and configuration",
        ],
        render: |dp, _| dp.show_ipv6_interface_brief(),
    },
    ShowCommand {
        syntax: "ip arp [vrf WORD$vrf]",
        help: &[
            "IP information",
            "IP ARP table",
            "A VRF's ARP table",
            "VRF name",
        ],
        render: |dp, args| dp.show_ip_arp(args.text("vrf")),
    },
    ShowCommand {
        syntax: "ip route [vrf WORD$vrf]",
        help: &[
            "IP information",
            "IP routing table",
            "A VRF's routing table",
            "VRF name",
        ],
        render: |dp, args| dp.show_ip_route(args.text("vrf")),
    },
    ShowCommand {
        syntax: "ipv6 route [vrf WORD$vrf]",
        help: &[
            "IPv6 information",
            "IPv6 routing table",
            "A VRF's routing table",
            "VRF name",
        ],
        render: |dp, args| dp.show_ipv6_route(args.text("vrf")),
    },
    ShowCommand {
        syntax: "vrf",
        help: &["VRFs: route distinguisher and interfaces"],
        render: |dp, _| dp.show_vrf(),
    },
    ShowCommand {
        syntax: "ipv6 neighbors",
        help: &["IPv6 information", "IPv6 neighbours (Neighbour Discovery)"],
        render: |dp, _| dp.show_ipv6_neighbors(),
    },
    ShowCommand {
        syntax: "arp",
        help: &["ARP table"],
        render: |dp, _| dp.show_arp(),
    },
    ShowCommand {
        syntax: "vxlan",
        help: &["VXLAN tunnels and learned MACs"],
        render: |dp, _| dp.show_vxlan(),
    },
    ShowCommand {
        syntax: "counters",
        help: &["Dataplane node counters"],
        render: |dp, _| dp.show_counters(),
    },
    ShowCommand {
        syntax: "dataplane workers",
        help: &[
            "Dataplane",
            "Forwarding workers: CPU, share of each port, packets",
        ],
        render: |dp, _| dp.show_workers(),
    },
    ShowCommand {
        syntax: "features",
        help: &["Network elements' nodes at each feature point"],
        render: |dp, _| dp.show_features(),
    },
];
