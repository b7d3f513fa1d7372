// SPDX-License-Identifier: GPL-2.0

//! sgctl: administer and exercise sockgroup service groups.
//!
//! See `README.md` beside `Cargo.toml` for the subcommands.

mod cluster;
mod connect;
mod error;
mod genl_uapi;
mod listening;
mod model;
mod net;
mod procfs;
mod remote;
mod serve;
mod sys;
mod table;
mod uapi;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::error::Error;

/// Administer and exercise sockgroup service groups.
#[derive(Debug, Parser)]
#[command(name = "sgctl", version, about)]
struct Cli {
    /// Run in the network namespace NAME (as `ip -n NAME`: /run/netns/NAME,
    /// or a path such as /proc/PID/ns/net).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    netns: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the groups of this network namespace (/proc/net/sockgroup).
    Show(ShowArgs),
    /// Run a test server of several members, grouped.
    Serve(serve::ServeArgs),
    /// Group listening sockets of running processes.
    Group(remote::GroupArgs),
    /// Take a socket of a running process out of its group.
    Ungroup(remote::FdArgs),
    /// Print the group of a socket of a running process.
    Info(remote::FdArgs),
    /// Open connections one after another and count who served them.
    Connect(connect::ConnectArgs),
    /// Configure and watch this namespace's node of a cluster (generic
    /// netlink family "sockgroup").
    Cluster(cluster::ClusterArgs),
}

/// Arguments of `sgctl show`.
#[derive(Debug, Args)]
struct ShowArgs {
    /// Read this file instead of /proc/net/sockgroup.
    #[arg(long, default_value = procfs::PROC_PATH)]
    file: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Writes `text` to stdout; a closed pipe is not an error worth a message.
fn print(text: &str) -> Result<(), Error> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::Msg(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Prints `value` as pretty JSON, or else `text()`.
fn output<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<(), Error> {
    if json {
        let mut out = serde_json::to_string_pretty(value)
            .map_err(|e| Error::Msg(format!("encoding JSON: {e}")))?;
        out.push('\n');
        print(&out)
    } else {
        print(&text())
    }
}

/// Reads and parses the listing at `path`.
fn read_groups(path: &Path) -> Result<Vec<model::Group>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut msg = format!("cannot read {}: {e}", path.display());
        if e.kind() == io::ErrorKind::NotFound && path == Path::new(procfs::PROC_PATH) {
            msg.push_str(": module not loaded (insmod sockgroup.ko)");
        }
        Error::Msg(msg)
    })?;
    procfs::parse(&text).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))
}

/// Runs one subcommand.
fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Show(args) => {
            let groups = read_groups(&args.file)?;
            output(args.json, &groups, || model::render_groups(&groups))
        }
        Command::Serve(args) => {
            let report = serve::run(&args)?;
            output(args.json, &report, || report.render())
        }
        Command::Group(args) => {
            let targets = match remote::named_targets(&args) {
                Some(targets) => targets,
                None => {
                    let pid = args.pid.expect("clap requires --pid with --listening");
                    let (targets, found) = remote::discover(pid)?;
                    print(&found)?;
                    targets
                }
            };
            let group = remote::group(&targets, args.policy, args.stall_ms)?;
            let stall = args
                .stall_ms
                .map_or(String::new(), |ms| format!(", stall-ms {ms}"));
            print(&format!(
                "grouped {} (policy {}{stall})\n",
                remote::join(&targets),
                args.policy
            ))?;
            group.map_or(Ok(()), |g| print(&g.render()))
        }
        Command::Ungroup(args) => {
            let target = args.target();
            remote::ungroup(target)?;
            print(&format!(
                "fd {} of process {} left its group\n",
                target.fd, target.pid
            ))
        }
        Command::Info(args) => {
            let group = remote::info(args.target())?;
            output(args.json, &group, || group.render())
        }
        Command::Connect(args) => {
            let summary = connect::run(&args);
            output(args.json, &summary, || summary.render())
        }
        Command::Cluster(args) => cluster::run(args),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage
            // errors exit with 1, like every other failure of sgctl.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let entered = cli.netns.as_deref().map_or(Ok(()), sys::enter_netns);
    match entered.and_then(|()| run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sgctl: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_serve_options() {
        let cli = Cli::try_parse_from([
            "sgctl",
            "serve",
            "--port",
            "8080",
            "--addr",
            "::",
            "--listeners",
            "4",
            "--distinct-ports",
            "--policy",
            "primary",
            "--stalled",
            "0",
            "2",
            "--no-group",
        ])
        .unwrap();
        let Command::Serve(a) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(a.addr.to_string(), "::");
        assert_eq!((a.port, a.listeners, a.backlog), (8080, 4, 128));
        assert!(a.distinct_ports && a.no_group && !a.json);
        assert_eq!(a.policy, model::Policy::Primary);
        assert_eq!(a.stalled, [0, 2]);
        assert_eq!(a.serve_seconds, None);
        assert_eq!(
            (a.stall_ms, a.rewrite, a.read_payload),
            (None, false, false)
        );
        let cli = Cli::try_parse_from([
            "sgctl",
            "serve",
            "--port",
            "1",
            "--stall-ms",
            "200",
            "--rewrite",
            "--read-payload",
        ])
        .unwrap();
        let Command::Serve(a) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(
            (a.stall_ms, a.rewrite, a.read_payload),
            (Some(200), true, true)
        );
    }

    #[test]
    fn serve_defaults_and_limits() {
        let cli = Cli::try_parse_from(["sgctl", "serve", "--port", "1"]).unwrap();
        let Command::Serve(a) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(a.addr.to_string(), "127.0.0.1");
        assert_eq!((a.listeners, a.policy), (3, model::Policy::Ring));
        for bad in [
            &["sgctl", "serve"][..],
            &["sgctl", "serve", "--port", "1", "--listeners", "0"],
            &["sgctl", "serve", "--port", "1", "--listeners", "65"],
            &["sgctl", "serve", "--port", "1", "--policy", "random"],
            &["sgctl", "serve", "--port", "70000"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    /// The arguments of `sgctl group ARGS`.
    fn group_args(args: &[&str]) -> Result<remote::GroupArgs, clap::Error> {
        let cli = Cli::try_parse_from(["sgctl", "group"].iter().chain(args))?;
        let Command::Group(a) = cli.command else {
            panic!("group expected")
        };
        Ok(a)
    }

    /// The socket that `sgctl COMMAND ARGS` (ungroup or info) names.
    fn fd_args(command: &str, args: &[&str]) -> Result<remote::FdArgs, clap::Error> {
        let cli = Cli::try_parse_from(["sgctl", command].iter().chain(args))?;
        match cli.command {
            Command::Ungroup(a) | Command::Info(a) => Ok(a),
            _ => panic!("ungroup or info expected"),
        }
    }

    fn target(pid: libc::pid_t, fd: i32) -> remote::Target {
        remote::Target { pid, fd }
    }

    #[test]
    fn parses_group_with_fds() {
        let a = group_args(&["--pid", "42", "--fd", "3", "--fd", "4", "--fd", "5"]).unwrap();
        assert_eq!(
            (a.pid, &a.fds[..], a.listening, a.policy),
            (Some(42), &[3, 4, 5][..], false, model::Policy::Ring)
        );
        assert_eq!(
            remote::named_targets(&a).unwrap(),
            [target(42, 3), target(42, 4), target(42, 5)]
        );
        assert_eq!(a.stall_ms, None);
        let a = group_args(&["--pid", "42", "--listening", "--stall-ms", "0"]).unwrap();
        assert_eq!(a.stall_ms, Some(0));
        let a = group_args(&["--member", "1:3", "--member", "1:4", "--stall-ms", "60000"]).unwrap();
        assert_eq!(a.stall_ms, Some(60000));
    }

    #[test]
    fn parses_group_with_members() {
        let a = group_args(&[
            "--member", "42:3", "--member", "77:5", "--member", "42:4", "--policy", "primary",
        ])
        .unwrap();
        assert_eq!(a.policy, model::Policy::Primary);
        assert_eq!(
            remote::named_targets(&a).unwrap(),
            [target(42, 3), target(77, 5), target(42, 4)]
        );
    }

    #[test]
    fn parses_group_with_listening() {
        let a = group_args(&["--pid", "42", "--listening"]).unwrap();
        assert_eq!((a.pid, a.listening), (Some(42), true));
        assert!(a.fds.is_empty() && a.members.is_empty());
        assert_eq!(remote::named_targets(&a), None);
    }

    #[test]
    fn rejects_bad_group_arguments() {
        for bad in [
            &[][..],
            &["--pid", "42"],
            &["--fd", "3", "--fd", "4"],
            &["--listening"],
            &["--pid", "42", "--listening", "--fd", "3"],
            &["--pid", "42", "--member", "42:3", "--member", "42:4"],
            &["--member", "42:3", "--fd", "4"],
            &["--member", "42:3", "--listening"],
            &["--member", "42"],
            &["--member", "x:3", "--member", "42:4"],
            &["--pid", "42", "--listening", "--stall-ms", "9"],
            &["--pid", "42", "--listening", "--stall-ms", "70000"],
            &["--pid", "42", "--listening", "--stall-ms", "x"],
        ] {
            assert!(group_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_ungroup_and_info() {
        for command in ["ungroup", "info"] {
            let a = fd_args(command, &["--pid", "1", "--fd", "3"]).unwrap();
            assert_eq!(a.target(), target(1, 3));
            let a = fd_args(command, &["--member", "8:9"]).unwrap();
            assert_eq!(a.target(), target(8, 9));
            for bad in [
                &[][..],
                &["--fd", "3"],
                &["--pid", "1"],
                &["--pid", "1", "--member", "1:3"],
                &["--fd", "3", "--member", "1:3"],
                &["--member", "1:3", "--member", "1:4"],
                &["--member", "1"],
            ] {
                assert!(fd_args(command, bad).is_err(), "{command} {bad:?}");
            }
        }
        let a = fd_args("info", &["--member", "1:3", "--json"]).unwrap();
        assert!(a.json);
    }

    #[test]
    fn parses_connect_and_show() {
        let cli = Cli::try_parse_from(["sgctl", "connect", "--port", "9", "--count", "5"]).unwrap();
        let Command::Connect(a) = cli.command else {
            panic!("connect expected")
        };
        assert_eq!(
            (a.port, a.count, a.timeout_ms, a.payload),
            (9, 5, 2000, None)
        );
        assert_eq!(a.addr.to_string(), "127.0.0.1");
        assert!(
            Cli::try_parse_from(["sgctl", "connect", "--port", "9", "--timeout-ms", "0"]).is_err()
        );
        let cli = Cli::try_parse_from(["sgctl", "show"]).unwrap();
        let Command::Show(a) = cli.command else {
            panic!("show expected")
        };
        assert_eq!(a.file, Path::new("/proc/net/sockgroup"));
        assert!(!a.json);
    }

    #[test]
    fn a_missing_listing_means_no_module() {
        let err = read_groups(Path::new(procfs::PROC_PATH));
        // On a host with the module loaded the file exists and parses.
        if let Err(e) = err {
            let msg = e.to_string();
            assert!(
                msg.contains("module not loaded (insmod sockgroup.ko)"),
                "{msg}"
            );
        }
        let other = read_groups(Path::new("/nonexistent/sockgroup")).unwrap_err();
        assert!(!other.to_string().contains("insmod"));
    }
}
