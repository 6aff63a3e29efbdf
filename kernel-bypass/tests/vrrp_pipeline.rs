//! VRRP over IPv6 in memory: what a virtual router sends when it becomes
//! master (its advert, unsolicited Neighbor Advertisements), what the
//! pipeline does for its addresses and MAC while master (answers
//! solicitations with the virtual MAC, routes frames sent to it) and that
//! a backup does none of it.

mod support;

use kernel_bypass::counters::Counter;
use kernel_bypass::features::Emitted;
use kernel_bypass::pipeline::Verdict;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::*;
use proptest::prelude::*;
use std::net::Ipv6Addr;
use support::harness::{Harness, HOST_MACS};
use support::packets::{echo6_request, ethernet, ipv6, neighbor_solicit};

const CONFIG: &str = "interface eth0\n ipv6 address 2001:db8:70::2/64\n\
    vrrp 51 ipv6 2001:db8:70::254\n vrrp 51 ipv6 FE80::1\n\
    interface eth1\n ipv6 address 2001:db8:71::1/64\n";
const VIRTUAL_MAC: Mac = [0x00, 0x00, 0x5e, 0x00, 0x02, 51];
const HOST: Mac = HOST_MACS[0];

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A solicitation from the host behind eth0 for `target`.
fn solicit(target: Ipv6Addr) -> Vec<u8> {
    let ns = neighbor_solicit(ip6("2001:db8:70::10"), HOST, target);
    ethernet(
        multicast_mac(ipv6_at(&ns, IPV6_DST)),
        HOST,
        ETHERTYPE_IPV6,
        &ns,
    )
}

/// An echo request from the host to `dst`, sent to Ethernet `to`.
fn echo(to: Mac, dst: &str) -> Vec<u8> {
    let packet = echo6_request(ip6("2001:db8:70::10"), ip6(dst), 64);
    ethernet(to, HOST, ETHERTYPE_IPV6, &packet)
}

/// A peer's advertisement for group 51 at `priority`, checksummed.
fn peer_advert(priority: u8) -> Vec<u8> {
    let mut message = vec![0x31, 51, priority, 1, 0, 100, 0, 0];
    message.extend_from_slice(&ip6("fe80::1").octets());
    let group = ip6("ff02::12");
    let mut p = ipv6(ip6("fe80::99"), group, 112, 255, &message);
    let sum = ipv6_payload_checksum(&p);
    put_be16(&mut p, IPV6_HEADER + 6, sum);
    ethernet(multicast_mac(group), HOST, ETHERTYPE_IPV6, &p)
}

/// Feeds `frames` on eth0: each verdict with its frame as it left.
fn feed(h: &mut Harness, frames: &[Vec<u8>]) -> Vec<(Verdict, Vec<u8>)> {
    let verdicts = h.feed_frames(0, frames);
    let out = h.batch.frames().iter().map(|f| f.data().to_vec());
    verdicts.into_iter().zip(out).collect()
}

/// Runs the tickers at `now_ms`: the frames they send, with their
/// Ethernet header.
fn tick(h: &Harness, now_ms: u64) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for ticker in h.snap.features.tickers() {
        ticker.tick(now_ms, &mut |e: Emitted<'_>| {
            sent.push(ethernet(e.dst, e.src, e.ethertype, e.payload));
        });
    }
    sent
}

#[test]
fn a_backup_neither_answers_for_the_virtual_addresses_nor_takes_the_virtual_mac() {
    let mut h = Harness::new(CONFIG, &[("eth1", "2001:db8:71::2")]);
    let out = feed(
        &mut h,
        &[
            solicit(ip6("2001:db8:70::254")),
            echo(VIRTUAL_MAC, "2001:db8:71::2"),
        ],
    );
    assert!(out.iter().all(|(v, _)| *v == Verdict::Done), "{out:?}");
    assert_eq!(
        h.total(Counter::Ipv6NotRoutable),
        1,
        "not a group it listens to"
    );
    assert_eq!(h.total(Counter::EthernetOtherHost), 1);
}

#[test]
fn a_new_master_advertises_announces_answers_with_the_virtual_mac_and_routes_until_a_better_one_comes(
) {
    let mut h = Harness::new(CONFIG, &[("eth1", "2001:db8:71::2")]);
    // Long after the master-down interval: master.
    let sent = tick(&h, 1 << 40);
    assert_eq!(sent.len(), 3, "an advert and one NA per address");
    let advert = &sent[0];
    assert_eq!(mac_at(advert, 0), [0x33, 0x33, 0, 0, 0, 0x12]);
    assert_eq!(mac_at(advert, 6), VIRTUAL_MAC);
    let ip = &advert[ETH_HEADER..];
    assert_eq!((ip[IPV6_NEXT_HEADER], ip[IPV6_HOP_LIMIT]), (112, 255));
    assert_eq!(ipv6_at(ip, IPV6_SRC), link_local_for(&mac_for("eth0")));
    assert_eq!(ipv6_payload_checksum(ip), 0);
    assert_eq!(ip[IPV6_HEADER + 3], 2, "two addresses");
    assert_eq!(
        ipv6_at(ip, IPV6_HEADER + 8),
        ip6("fe80::1"),
        "link-local first"
    );
    assert_eq!(ipv6_at(ip, IPV6_HEADER + 24), ip6("2001:db8:70::254"));
    for (na, target) in sent[1..].iter().zip(["fe80::1", "2001:db8:70::254"]) {
        assert_eq!(mac_at(na, 0), multicast_mac(IPV6_ALL_NODES));
        assert_eq!(mac_at(na, 6), VIRTUAL_MAC);
        let ip = &na[ETH_HEADER..];
        assert_eq!(ipv6_payload_checksum(ip), 0);
        assert_eq!(ip[IPV6_HEADER], ICMPV6_NEIGHBOR_ADVERT);
        assert_eq!(ip[IPV6_HEADER + 4], ND_FLAG_ROUTER | ND_FLAG_OVERRIDE);
        assert_eq!(ipv6_at(ip, IPV6_HEADER + ND_TARGET), ip6(target));
        assert_eq!(mac_at(ip, IPV6_HEADER + ND_OPTIONS + 2), VIRTUAL_MAC);
    }
    let brief = h.show("vrrp brief");
    let own = link_local_for(&mac_for("eth0"));
    let line = format!("IPv6 100  1000   N    Master  {own:<16} fe80::1 2001:db8:70::254");
    assert!(brief.contains(&line), "{brief}");

    let out = feed(
        &mut h,
        &[
            solicit(ip6("2001:db8:70::254")),
            solicit(ip6("fe80::1")),
            echo(VIRTUAL_MAC, "2001:db8:71::2"),
            echo(VIRTUAL_MAC, "2001:db8:70::254"),
        ],
    );
    for (verdict, na) in &out[..2] {
        assert_eq!(*verdict, Verdict::Tx(0));
        assert_eq!((mac_at(na, 0), mac_at(na, 6)), (HOST, VIRTUAL_MAC));
        let ip = &na[ETH_HEADER..];
        assert_eq!(
            ip[IPV6_HEADER + 4],
            ND_FLAG_ROUTER | ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE
        );
        assert_eq!(mac_at(ip, IPV6_HEADER + ND_OPTIONS + 2), VIRTUAL_MAC);
    }
    assert_eq!(out[2].0, Verdict::Tx(1), "routed by the master");
    assert_eq!(out[3].0, Verdict::Tx(0), "the virtual address answers echo");

    // A better router's advert: back to backup, and silent.
    let out = feed(&mut h, &[peer_advert(200)]);
    assert_eq!(out[0].0, Verdict::Done);
    assert!(h
        .show("vrrp")
        .contains("Master Router is fe80::99, priority is 200"));
    let out = feed(&mut h, &[solicit(ip6("2001:db8:70::254"))]);
    assert_eq!(out[0].0, Verdict::Done);
    assert_eq!(
        h.total(Counter::Ipv6NotRoutable),
        1,
        "not a group it listens to"
    );
}

proptest! {
    /// Adverts with any bytes changed, cut short or lengthened, fed to a
    /// master and to a backup, then shown: never a panic.
    #[test]
    fn mangled_ipv6_adverts_never_panic_the_pipeline(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        tail in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let mut frame = peer_advert(200);
        for (at, byte) in edits {
            // The Ethernet header stays: the pipeline must see IPv6.
            let at = ETH_HEADER + at % (frame.len() - ETH_HEADER);
            frame[at] = byte;
        }
        frame.truncate(ETH_HEADER + cut % (frame.len() - ETH_HEADER + 1));
        frame.extend_from_slice(&tail);
        let mut backup = Harness::new(CONFIG, &[]);
        feed(&mut backup, std::slice::from_ref(&frame));
        let mut master = Harness::new(CONFIG, &[]);
        tick(&master, 1 << 40);
        feed(&mut master, &[frame]);
        let _ = master.show("vrrp");
    }
}
