//! The load balancer between Linux hosts in network namespaces, with their
//! default offloads, in process (probes are the binary's: see tests/slb.rs
//! at the top level): a client reaches backends through a virtual server
//! with destination NAT and with full NAT.
//!
//! ```text
//!  client 10.63.1.2 --- [dataplane] --- backends 10.63.2.11, .12 (python http.server)
//! ```

mod support;

use grammar::parse_config;
use kernel_bypass::io::Backend;
use support::dataplane::{show, start};
use support::netns::{is_root, Netns, Veth};

#[test]
fn clients_reach_backends_through_the_virtual_server() {
    if !is_root() {
        return;
    }
    let (client, servers) = (Netns::new(), Netns::new());
    let (pc, ps) = (Veth::into_ns(&client), Veth::into_ns(&servers));
    let text = format!(
        "interface {}\n ip address 10.63.1.1/24\n\
         interface {}\n ip address 10.63.2.1/24\n\
         ip slb serverfarm WEB\n real 10.63.2.11\n  inservice\n real 10.63.2.12\n  inservice\n\
         ip slb serverfarm FULL\n nat client\n real 10.63.2.11\n  inservice\n\
         ip slb vserver SITE\n virtual 198.51.100.63 tcp 80\n serverfarm WEB\n inservice\n\
         ip slb vserver HIDE\n virtual 198.51.100.63 tcp 8080\n serverfarm FULL\n inservice\n",
        pc.outer, ps.outer
    );
    let (config, errors) = parse_config(&text);
    assert_eq!(errors, [], "{text}");
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    client.configure(&pc.inner, "10.63.1.2/24", Some("10.63.1.1"));
    servers.configure(&ps.inner, "10.63.2.11/24", Some("10.63.2.1"));
    servers.run(&["ip", "addr", "add", "10.63.2.12/24", "dev", &ps.inner]);
    let _backends = [
        servers.spawn(&["python3", "-m", "http.server", "80", "--bind", "10.63.2.11"]),
        servers.spawn(&["python3", "-m", "http.server", "80", "--bind", "10.63.2.12"]),
        servers.spawn(&[
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "10.63.2.11",
        ]),
    ];
    let state = || {
        [
            show(&dataplane, "ip slb vserver"),
            show(&dataplane, "ip slb reals"),
            show(&dataplane, "ip slb sessions"),
            dataplane.show_counters(),
        ]
        .join("\n")
    };
    assert!(
        client.fetches("http://198.51.100.63/", 40),
        "destination NAT\n{}",
        state()
    );
    // Full NAT: the backend's route back does not matter any more.
    servers.run(&["ip", "route", "del", "default"]);
    assert!(
        client.fetches("http://198.51.100.63:8080/", 40),
        "full NAT\n{}",
        state()
    );
    assert!(
        !client.fetches("http://198.51.100.63/", 1),
        "without full NAT the backend cannot answer"
    );
}
