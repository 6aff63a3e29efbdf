//! The appliance's monitoring, logging and time services against the real
//! thing, each in a namespace on a veth to `gatehouse run`: a Prometheus
//! server scraping `/metrics` (queried through its HTTP API), a syslog
//! receiver (socat on UDP 514) and an NTP server (chrony). Plus the scrape
//! time with a million routes, printed beside a baseline.

// The namespace helpers of the dataplane tests, shared rather than copied.
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, unique, Child, Netns, Veth, SETTLE};
use std::io::Write;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// The appliance (10.N.1.1) on one veth to a host (10.N.1.2), with a
/// directory for its startup config, its console and the peers' files,
/// removed on drop.
struct Site {
    host: Netns,
    link: Veth,
    net: u8,
    dir: PathBuf,
    cli: Mutex<Option<ChildStdin>>,
}

impl Site {
    /// `config` follows the interface block (`{host}` stands for the host's address).
    fn new(net: u8, config: &str) -> Site {
        let host = Netns::new();
        let link = Veth::into_ns(&host);
        host.configure(&link.inner, &format!("10.{net}.1.2/24"), None);
        let dir = std::env::temp_dir().join(unique("ops"));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "hostname edge-ops\ninterface {}\n ip address 10.{net}.1.1/24\n{}",
            link.outer,
            config.replace("{host}", &format!("10.{net}.1.2"))
        );
        std::fs::write(dir.join("startup-config"), text).unwrap();
        Site {
            host,
            link,
            net,
            dir,
            cli: Mutex::new(None),
        }
    }

    fn appliance(&self) -> String {
        format!("10.{}.1.1", self.net)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// `gatehouse run` with its CLI on a pipe and its console in a file.
    fn start(&self) -> Child {
        let mut child = Command::new(BIN)
            .args(["run", "--config", &self.path("startup-config")])
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(self.path("console")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        *self.cli.lock().unwrap() = child.stdin.take();
        Child(child)
    }

    fn type_lines(&self, lines: &[&str]) {
        let mut cli = self.cli.lock().unwrap();
        let cli = cli.as_mut().expect("started");
        for line in lines {
            writeln!(cli, "{line}").unwrap();
        }
    }

    /// Reads `file` until `done` holds of it (a hang guard, not a timing).
    fn file_until(&self, file: &str, patience: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let text = std::fs::read_to_string(self.path(file)).unwrap_or_default();
            if done(&text) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Prometheus server in the host namespace scraping the appliance every
/// second; its API on the namespace's loopback.
fn prometheus(site: &Site, port: u16) -> Child {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gatehouse\n    \
         static_configs:\n      - targets: ['{}:{port}']\n",
        site.appliance()
    );
    std::fs::write(site.path("prometheus.yml"), config).unwrap();
    let config = format!("--config.file={}", site.path("prometheus.yml"));
    let storage = format!("--storage.tsdb.path={}", site.path("tsdb"));
    site.host.spawn(&[
        "prometheus",
        &config,
        &storage,
        "--web.listen-address=127.0.0.1:9090",
    ])
}

/// The values of a Prometheus query's result, with each sample's labels,
/// one `labels value` line each, once it has some (or after patience runs out).
fn query(site: &Site, expr: &str) -> String {
    const PRINT: &str = "import json,sys\n\
        for r in json.load(sys.stdin)['data']['result']:\n print(json.dumps(r['metric'], sort_keys=True), r['value'][1])";
    let script = format!(
        "curl -sS -G http://127.0.0.1:9090/api/v1/query --data-urlencode 'query={expr}' | python3 -c \"{PRINT}\""
    );
    let deadline = Instant::now() + 3 * SETTLE;
    loop {
        let out = site.host.output(&["sh", "-c", &script]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.is_empty() || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The value of a one-sample query result (0 when there is none).
fn value(result: &str) -> f64 {
    let last = result.split_whitespace().last();
    last.and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[test]
fn prometheus_scrapes_interface_counters_from_the_appliance_and_others_are_refused() {
    if !is_root() {
        return;
    }
    let site = Site::new(
        71,
        "ip access-list extended SCRAPERS\n permit ip host {host} any\n\
         ip http metrics port 9100\nip http access-class SCRAPERS\n",
    );
    let _appliance = site.start();
    assert!(site.host.ping_ok(&site.appliance()), "traffic to count");
    let _prometheus = prometheus(&site, 9100);
    let up = query(&site, "up==1");
    assert!(up.contains("\"job\": \"gatehouse\""), "target up: {up:?}");
    let expr = format!(
        "gatehouse_interface_rx_packets_total{{interface=\"{}\"}}>0",
        site.link.outer
    );
    let rx = query(&site, &expr);
    assert!(value(&rx) > 0.0, "rx packets after pings: {rx:?}");
    let routes = query(&site, "gatehouse_routes{family=\"ipv4\",vrf=\"global\"}");
    assert!(value(&routes) >= 1.0, "the connected route: {routes:?}");
    let drops = query(&site, "gatehouse_node_drops_total");
    assert!(
        drops.contains("\"reason\": \"no-route\""),
        "every drop reason: {drops:?}"
    );
    // Another source of the host's: the access class closes it unanswered.
    let other = format!("10.{}.1.3/24", site.net);
    site.host
        .run(&["ip", "addr", "add", &other, "dev", &site.link.inner]);
    let url = format!("http://{}:9100/metrics", site.appliance());
    let refused = site
        .host
        .output(&["curl", "-sS", "-m", "3", "--interface", "10.71.1.3", &url]);
    assert!(
        !refused.status.success(),
        "a source the list does not permit"
    );
    let page = site.host.run(&["curl", "-sS", "-m", "3", &url]);
    assert!(page.ends_with("# EOF\n"), "OpenMetrics text: {page}");
}

/// Not a pass/fail timing: prints the median time of a scrape with a
/// million routes configured, beside the status page's round trip on the
/// same appliance (the cost of an HTTP request on its own stack).
#[test]
fn a_scrape_with_a_million_routes_is_timed_beside_the_status_page() {
    if !is_root() {
        return;
    }
    let mut config = String::with_capacity(32 << 20);
    for i in 0..1_000_000u32 {
        let prefix = std::net::Ipv4Addr::from(0x0b00_0000 + (i << 8));
        config.push_str(&format!("ip route {prefix}/24 {{host}}\n"));
    }
    config.push_str("ip http metrics port 9100\n");
    let site = Site::new(72, &config);
    drop(config);
    let _appliance = site.start();
    let metrics = format!("http://{}:9100/metrics", site.appliance());
    let page = site
        .host
        .stdout_until(&["curl", "-sS", "-m", "5", &metrics], |text| {
            text.contains("gatehouse_routes{vrf=\"global\",family=\"ipv4\"} 100000")
        });
    assert!(
        page.contains("gatehouse_routes{vrf=\"global\",family=\"ipv4\"} 100000"),
        "a million routes and the connected ones: {page}"
    );
    let median = |url: &str| {
        let mut times: Vec<f64> = (0..11)
            .map(|_| {
                let args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", url];
                site.host.run(&args).parse().unwrap_or(f64::NAN)
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2] * 1000.0
    };
    let scrape = median(&metrics);
    let status = median(&format!("http://{}/", site.appliance()));
    println!(
        "scrape with 1M routes: {scrape:.2} ms for {} bytes (median of 11, curl from a namespace); \
         status page on the same appliance: {status:.2} ms",
        page.len()
    );
}

#[test]
fn a_syslog_receiver_gets_an_rfc_5424_line_for_a_commit_saying_who_made_it() {
    if !is_root() {
        return;
    }
    let config =
        "logging buffered 50 notifications\nlogging trap notifications\nlogging host {host}\n";
    let site = Site::new(73, config);
    let into = format!("OPEN:{},creat,append", site.path("syslog"));
    let _receiver = site.host.spawn(&["socat", "-u", "UDP4-RECV:514", &into]);
    let _appliance = site.start();
    assert!(site.host.ping_ok(&site.appliance()), "the appliance is up");
    site.type_lines(&[
        "enable",
        "configure terminal",
        "hostname edge-logged",
        "commit",
        "end",
    ]);
    let received = site.file_until("syslog", SETTLE, |text| text.contains("CONFIG_I"));
    assert!(
        received.starts_with("<189>1 20"),
        "PRI, version, timestamp: {received:?}"
    );
    assert!(
        received.contains(" edge-logged gatehouse ")
            && received.contains(
                " - - %SYS-5-CONFIG_I: Configured by console (configure terminal, commit 1)"
            ),
        "hostname, app, the commit and who made it: {received:?}"
    );
    // A sub-interface configured shut, then brought up: its line protocol
    // comes up, which the dataplane watcher logs within seconds.
    let sub = format!("{}.100", site.link.outer);
    site.type_lines(&[
        "configure terminal",
        &format!("interface {sub}"),
        "encapsulation dot1q 100",
        "ip address 10.199.0.1/24",
        "shutdown",
        "commit",
        "no shutdown",
        "commit",
        "end",
    ]);
    let up = format!("%LINEPROTO-5-UPDOWN: Line protocol on Interface {sub}, changed state to up");
    let received = site.file_until("syslog", SETTLE, |text| text.contains(&up));
    assert!(received.contains(&up), "{received:?}");
    site.type_lines(&["show logging"]);
    let console = site.file_until("console", SETTLE, |text| text.contains("of at most 50"));
    assert!(
        console.contains("(of at most 50, level notifications)")
            && console.contains("s %SYS-5-CONFIG_I: Configured by console"),
        "the buffer's size and the line: {console}"
    );
}

#[test]
fn a_chrony_server_synchronises_the_appliance_clock_without_touching_the_host_clock() {
    if !is_root() {
        return;
    }
    let site = Site::new(74, "ntp server {host}\n");
    let config = format!(
        "allow all\nlocal stratum 8\ncmdport 0\npidfile {dir}/chronyd.pid\ndriftfile {dir}/drift\n",
        dir = site.dir.display()
    );
    std::fs::write(site.path("chrony.conf"), config).unwrap();
    // -x: chrony leaves the (shared) system clock alone too.
    let conf = site.path("chrony.conf");
    let _chrony = site
        .host
        .spawn(&["chronyd", "-d", "-x", "-u", "root", "-f", &conf]);
    let _appliance = site.start();
    let poll = || {
        site.type_lines(&["show ntp status"]);
        site.file_until("console", Duration::from_secs(1), |t| {
            t.contains("Clock is synchronized")
        })
    };
    let deadline = Instant::now() + 3 * SETTLE;
    let mut console = poll();
    while !console.contains("Clock is synchronized") && Instant::now() < deadline {
        console = poll();
    }
    let status = "stratum 9, reference is 10.74.1.2";
    assert!(
        console.contains(status),
        "chrony's stratum 8 plus one: {console}"
    );
    let offset: f64 = console
        .split("clock offset is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(f64::MAX);
    assert!(
        offset.abs() < 1000.0,
        "one host, one clock: offset {offset} ms"
    );
    assert!(
        console.contains("the host's clock is left alone"),
        "{console}"
    );
    site.type_lines(&["show clock"]);
    let console = site.file_until("console", SETTLE, |t| t.contains(" UTC "));
    let clock = console
        .lines()
        .find(|l| l.contains(" UTC "))
        .unwrap_or_default();
    assert!(
        !clock.contains('*'),
        "a clock a server vouches for: {clock:?}"
    );
}

#[test]
fn show_processes_cpu_lists_the_workers_and_show_memory_the_process_and_tables() {
    if !is_root() {
        return;
    }
    let site = Site::new(75, "ip route 10.75.9.0/24 10.75.1.2\n");
    let _appliance = site.start();
    site.type_lines(&["enable", "show processes cpu"]);
    let deadline = Instant::now() + 3 * SETTLE;
    let mut console = String::new();
    // The first sample is taken as the appliance starts; ask until it is in.
    while !console.contains("dataplane-0") && Instant::now() < deadline {
        site.type_lines(&["show processes cpu"]);
        console = site.file_until("console", Duration::from_secs(1), |t| {
            t.contains("dataplane-0")
        });
    }
    assert!(
        console.contains("CPU utilization for five seconds: "),
        "{console}"
    );
    assert!(
        console.contains("gatehouse-ctl"),
        "the control runtime: {console}"
    );
    site.type_lines(&["show memory"]);
    let console = site.file_until("console", SETTLE, |t| t.contains("routes global"));
    let resident = console
        .split("resident       ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|mib| mib.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(resident > 1.0, "a resident size in MiB: {console}");
    let global_routes = console
        .split("routes global")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        global_routes >= 2,
        "connected, local and static routes: {console}"
    );
}
