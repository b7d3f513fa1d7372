// SPDX-License-Identifier: GPL-2.0

//! End-to-end runs of the sgctl binary on this host, on loopback only.
//!
//! Without the sockgroup module (the usual case outside the test VM) the
//! grouping commands must fail with the ENOPROTOOPT explanation; with it they
//! must succeed.  Every server started here is bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

const SGCTL: &str = env!("CARGO_BIN_EXE_sgctl");

fn sample() -> PathBuf {
    data("sockgroup.txt")
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn module_loaded() -> bool {
    Path::new("/proc/net/sockgroup").exists()
}

fn sgctl(args: &[&str]) -> Output {
    Command::new(SGCTL).args(args).output().expect("run sgctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `sgctl serve` in the background, killed when dropped.
struct Server {
    child: Option<Child>,
    ready: PathBuf,
}

impl Server {
    /// Starts `sgctl serve ARGS` and waits for its ready file.
    fn start(name: &str, args: &[&str]) -> Self {
        let ready = std::env::temp_dir().join(format!("sgctl-{}-{name}.ready", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(SGCTL)
            .arg("serve")
            .args(args)
            .args(["--serve-seconds", "60", "--ready-file"])
            .arg(&ready)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sgctl serve");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "sgctl serve did not get ready");
            sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            ready,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The port of member `index`, from the ready file.
    fn port(&self, index: usize) -> u16 {
        let text = std::fs::read_to_string(&self.ready).unwrap();
        let line = text.lines().nth(index).expect("member line");
        line.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The fds of the server's sockets, in increasing order.
    fn socket_fds(&self) -> Vec<String> {
        let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                let name = e.file_name().into_string().ok()?;
                target
                    .to_string_lossy()
                    .starts_with("socket:")
                    .then(|| (name.parse().unwrap(), name))
            })
            .collect();
        fds.sort();
        fds.into_iter().map(|(_, name)| name).collect()
    }

    /// Stops the server with SIGTERM and returns its output.
    fn stop(mut self) -> Output {
        let child = self.child.take().unwrap();
        // SAFETY: kill() takes integers; the pid is our own running child.
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.ready);
    }
}

#[test]
fn show_renders_a_listing() {
    let file = sample();
    let out = sgctl(&["show", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("group 1  policy ring  mode steer  members 3  dropped 1\n"));
    assert!(text.contains("\ngroup 2  policy primary  mode steer  members 2  dropped 2\n"));
    assert!(text.contains("  1       inet    127.0.0.1:8080  LISTEN  128/128"));
    assert!(text.contains("[::]:8081"));

    let out = sgctl(&["show", "--json", "--file", file.to_str().unwrap()]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["id"], 1);
    assert_eq!(json[0]["members"].as_array().unwrap().len(), 3);
    assert_eq!(json[1]["members"][1]["redirected_in"], 7);
}

#[test]
fn show_renders_stall_rescue() {
    let file = data("sockgroup_v2.txt");
    let out = sgctl(&["show", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("group 3  policy ring  mode steer  members 3  dropped 0  stall-ms 200\n"),
        "{text}"
    );
    let row = |k: usize| -> Vec<String> {
        let line = text.lines().nth(2 + k).unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(row(0)[9..], ["stalled", "65", "0", "4097"]);
    assert_eq!(row(1)[9..], ["serving", "0", "33", "4098"]);

    let out = sgctl(&["show", "--json", "--file", file.to_str().unwrap()]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["stall_ms"], 200);
    let m = &json[0]["members"];
    assert_eq!(m[0]["status"], "stalled");
    assert_eq!(m[0]["rescued_away"], 65);
    assert_eq!(m[2]["rescued_in"], 32);
    // The listing does not tell how long: getsockopt does.
    assert!(m[0].get("stalled_ms").is_none());

    // The older listing has none of it.
    let out = sgctl(&["show", "--json", "--file", sample().to_str().unwrap()]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json[0].get("stall_ms").is_none());
    assert!(json[0]["members"][0].get("status").is_none());
}

#[test]
fn show_fails_clearly() {
    let out = sgctl(&["show", "--file", "/nonexistent/sockgroup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read /nonexistent/sockgroup"));
    if !module_loaded() {
        let out = sgctl(&["show"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("module not loaded (insmod sockgroup.ko)"));
    }
}

#[test]
fn serve_without_group_answers_connect() {
    let server = Server::start("plain", &["--no-group", "--port", "0", "--json"]);
    let port = server.port(0).to_string();
    let out = sgctl(&["connect", "--port", &port, "--count", "30", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["completed"], 30);
    assert_eq!(summary["failed"], 0);
    let served: u64 = summary["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["served"].as_u64().unwrap())
        .sum();
    assert_eq!(served, 30);

    let out = server.stop();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["grouped"], false);
    assert_eq!(report["total"], 30);
    assert_eq!(report["members"].as_array().unwrap().len(), 3);
}

#[test]
fn serve_on_distinct_ports_and_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    let server = Server::start(
        "v6",
        &[
            "--no-group",
            "--addr",
            "::1",
            "--port",
            "0",
            "--listeners",
            "2",
            "--distinct-ports",
        ],
    );
    for member in 0..2 {
        let port = server.port(member).to_string();
        let out = sgctl(&["connect", "--addr", "::1", "--port", &port, "--count", "3"]);
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(
            text.starts_with("connections 3: 3 completed, 0 failed"),
            "{text}"
        );
        assert!(text.contains(&format!("member {member}: 3\n")), "{text}");
    }
    let out = server.stop();
    assert!(stdout(&out).contains("total 6\n"), "{}", stdout(&out));
}

#[test]
fn payloads_arrive_intact() {
    let server = Server::start(
        "payload",
        &[
            "--no-group",
            "--port",
            "0",
            "--listeners",
            "2",
            "--read-payload",
            "--json",
        ],
    );
    let port = server.port(0).to_string();
    for len in ["1", "700", "16384"] {
        let out = sgctl(&[
            "connect",
            "--port",
            &port,
            "--count",
            "20",
            "--concurrency",
            "4",
            "--payload",
            len,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["completed"], 20, "payload {len}: {summary}");
        assert_eq!(summary["payload_mismatch"], 0);
        assert_eq!(summary["payload_bytes"], len.parse::<u64>().unwrap());
    }
    // A client that sends nothing gets no reply from a payload reader
    // (which answers once it gives up and closes: `member K 0 HASH`), and a
    // payload is not what a plain server reads.
    let out = sgctl(&[
        "connect",
        "--port",
        &port,
        "--count",
        "2",
        "--timeout-ms",
        "300",
    ]);
    let text = stdout(&out);
    assert!(
        text.starts_with("connections 2: 0 completed, 2 failed (0 connect failed, 2 timed out"),
        "{text}"
    );
    let out = server.stop();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"], 62);
    assert_eq!(report["unanswered"], 0);

    let plain = Server::start("nopayload", &["--no-group", "--port", "0"]);
    let port = plain.port(0).to_string();
    let out = sgctl(&[
        "connect",
        "--port",
        &port,
        "--count",
        "3",
        "--payload",
        "10",
    ]);
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "connections 3: 0 completed, 3 failed (0 connect failed, 0 timed out, \
             0 no reply, 3 payload mismatched)\n"
        ),
        "{text}"
    );
}

#[test]
fn connect_counts_refused_connections() {
    // A port that was just free: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let out = sgctl(&[
        "connect",
        "--port",
        &port,
        "--count",
        "3",
        "--timeout-ms",
        "500",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("connections 3: 0 completed, 3 failed (3 connect failed"));
}

#[test]
fn grouping_needs_the_module() {
    let out = sgctl(&["serve", "--port", "0", "--serve-seconds", "0"]);
    if module_loaded() {
        assert!(out.status.success(), "{}", stderr(&out));
    } else {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("(ENOPROTOOPT): module not loaded (insmod sockgroup.ko)"),
            "{err}"
        );
    }
}

#[test]
fn groups_the_sockets_of_another_process() {
    let server = Server::start("remote", &["--no-group", "--port", "0", "--listeners", "2"]);
    let pid = server.pid().to_string();
    let fds = server.socket_fds();
    assert_eq!(fds.len(), 2, "{fds:?}");
    let out = sgctl(&["group", "--pid", &pid, "--fd", &fds[0], "--fd", &fds[1]]);
    let info = sgctl(&["info", "--pid", &pid, "--fd", &fds[0], "--json"]);
    let ungroup = sgctl(&["ungroup", "--pid", &pid, "--fd", &fds[0]]);
    if module_loaded() {
        assert!(out.status.success(), "{}", stderr(&out));
        let group: Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(group["members"].as_array().unwrap().len(), 2);
        assert!(ungroup.status.success(), "{}", stderr(&ungroup));
    } else {
        for out in [&out, &info, &ungroup] {
            assert_eq!(out.status.code(), Some(1));
            assert!(stderr(out).contains("module not loaded"), "{}", stderr(out));
        }
    }
    let missing = sgctl(&["info", "--pid", &pid, "--fd", "999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("(EBADF): the process has no such open fd"),
        "{}",
        stderr(&missing)
    );
}

/// Asserts that a grouping command succeeded with the module, or failed
/// with the ENOPROTOOPT explanation without it.
fn assert_grouped_or_no_module(out: &Output) {
    if module_loaded() {
        assert!(out.status.success(), "{}", stderr(out));
        assert!(stdout(out).contains("grouped "), "{}", stdout(out));
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(out).contains("module not loaded"), "{}", stderr(out));
    }
}

#[test]
fn groups_the_listening_sockets_of_a_process() {
    let server = Server::start(
        "listening",
        &["--no-group", "--port", "0", "--listeners", "2"],
    );
    let pid = server.pid().to_string();
    let fds = server.socket_fds();
    let out = sgctl(&["group", "--pid", &pid, "--listening"]);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("process {pid}: 2 listening TCP sockets\n  FD")),
        "{text}"
    );
    for (fd, member) in fds.iter().zip(0..) {
        let local = format!("127.0.0.1:{}", server.port(member));
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().eq([fd.as_str(), local.as_str()])),
            "fd {fd} {local} not in {text}"
        );
    }
    assert_grouped_or_no_module(&out);
    if module_loaded() {
        assert!(text.contains(&format!(
            "grouped {pid}:{} {pid}:{} (policy ring)\n",
            fds[0], fds[1]
        )));
    }
}

#[test]
fn groups_sockets_of_several_processes() {
    let a = Server::start(
        "member-a",
        &["--no-group", "--port", "0", "--listeners", "1"],
    );
    let b = Server::start(
        "member-b",
        &["--no-group", "--port", "0", "--listeners", "1"],
    );
    let ma = format!("{}:{}", a.pid(), a.socket_fds()[0]);
    let mb = format!("{}:{}", b.pid(), b.socket_fds()[0]);
    let out = sgctl(&["group", "--member", &ma, "--member", &mb]);
    assert_grouped_or_no_module(&out);
    let info = sgctl(&["info", "--member", &mb, "--json"]);
    let ungroup = sgctl(&["ungroup", "--member", &ma]);
    if module_loaded() {
        assert!(stdout(&out).contains(&format!("grouped {ma} {mb} (policy ring)\n")));
        let group: Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(group["members"].as_array().unwrap().len(), 2);
        assert!(ungroup.status.success(), "{}", stderr(&ungroup));
    } else {
        for out in [&info, &ungroup] {
            assert_eq!(out.status.code(), Some(1));
            assert!(stderr(out).contains("module not loaded"), "{}", stderr(out));
        }
    }
    let twice = sgctl(&["group", "--member", &ma, "--member", &ma]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(stderr(&twice).contains(&format!("{ma} is given twice (position 2)")));
}

#[test]
fn usage_errors_exit_non_zero() {
    for args in [
        &["connect"][..],
        &["group", "--pid", "1", "--fd", "3"],
        &["group", "--member", "1:3"],
        &["group", "--member", "1", "--member", "1:4"],
        &["group", "--pid", "1"],
        &["info", "--member", "1:3", "--fd", "4"],
        &["serve", "--port", "0", "--stalled", "5"],
        &["serve", "--port", "0", "--stall-ms", "5"],
        &["serve", "--port", "0", "--stall-ms", "60001"],
        &["serve", "--port", "0", "--stall-ms", "100", "--no-group"],
        &["serve", "--port", "0", "--rewrite", "--no-group"],
        &[
            "group",
            "--member",
            "1:3",
            "--member",
            "1:4",
            "--stall-ms",
            "1",
        ],
        &["connect", "--port", "1", "--payload", "0"],
        &["connect", "--port", "1", "--payload", "16385"],
    ] {
        let out = sgctl(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
}
