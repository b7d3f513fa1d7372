// SPDX-License-Identifier: GPL-2.0

//! Errors of sgctl, with the meaning of each errno and what to do about it.

use std::ffi::CStr;
use std::fmt;
use std::io;

/// The calls whose errnos sgctl explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `setsockopt(SO_SERVICE_GROUP)`: form, re-form or leave a group.
    SetGroup,
    /// `getsockopt(SO_SERVICE_GROUP)`: read a group.
    GetGroup,
    /// `pidfd_open(2)`.
    PidfdOpen,
    /// `pidfd_getfd(2)`.
    PidfdGetfd,
    /// Any other call: no particular advice.
    Other,
}

/// What an errno of `call` means for the user, beyond its generic text.
pub fn hint(call: Call, errno: i32) -> Option<&'static str> {
    use Call::*;
    Some(match (call, errno) {
        (SetGroup | GetGroup, libc::ENOPROTOOPT) => "module not loaded (insmod sockgroup.ko)",
        (SetGroup, libc::EINVAL) => {
            "bad request: every member must be a listening TCP socket, listed once \
             (the first fd not again), and the module must speak the request's version \
             (1; 2 with --stall-ms, which a module without stall rescue refuses)"
        }
        (SetGroup, libc::E2BIG) => "too many members: a group has at most 64",
        (SetGroup, libc::EBADF) => "one of the fds is not open",
        (SetGroup, libc::ENOTSOCK) => "one of the fds is not a socket",
        (SetGroup, libc::EOPNOTSUPP) => "one of the sockets is not TCP over IPv4 or IPv6",
        (SetGroup, libc::EXDEV) => "the sockets are in different network namespaces",
        (SetGroup, libc::EAFNOSUPPORT) => {
            "the sockets mix address families (only an IPv6 socket without \
             IPV6_V6ONLY may join IPv4 ones)"
        }
        (SetGroup, libc::EBUSY) => {
            "a socket is already in another group (sgctl ungroup it, or re-form \
             the group from one of its members)"
        }
        (SetGroup | GetGroup, libc::ENOENT) => "the socket is in no group",
        (PidfdOpen, libc::ENOSYS) => "the kernel has no pidfd_open (Linux 5.3 or later needed)",
        (PidfdGetfd, libc::EBADF) => "the process has no such open fd",
        (PidfdGetfd, libc::EPERM) => {
            "not allowed to take the process's fds: ptrace access is needed \
             (run as root, or as its user with kernel.yama.ptrace_scope=0)"
        }
        (PidfdGetfd, libc::ESRCH) => "the process has exited",
        (PidfdGetfd, libc::ENOSYS) => "the kernel has no pidfd_getfd (Linux 5.6 or later needed)",
        _ => return None,
    })
}

/// The symbolic name of an errno, for the common ones.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EXDEV => "EXDEV",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOBUFS => "ENOBUFS",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EBADMSG => "EBADMSG",
        libc::ENOTCONN => "ENOTCONN",
        _ => return None,
    })
}

/// The C library's text for an errno.
fn strerror(errno: i32) -> String {
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: buf is writable for its whole length, which is passed; the XSI
    // strerror_r that libc binds writes a NUL-terminated string into it.
    let ret = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) };
    if ret != 0 {
        return format!("error {errno}");
    }
    // SAFETY: on success buf holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// An error of sgctl.
#[derive(Debug)]
pub enum Error {
    /// A system call failed with an errno.
    Os {
        /// What was being done, e.g. `setsockopt(SO_SERVICE_GROUP)`.
        what: String,
        /// The errno.
        errno: i32,
        /// What the errno means here, if sgctl knows.
        hint: Option<&'static str>,
    },
    /// A netlink request of the cluster family failed.
    Netlink {
        /// What was being done, e.g. `peer add`.
        what: String,
        /// The errno (positive).
        errno: i32,
        /// The kernel's extended ack message, if it gave one.
        extack: Option<String>,
    },
    /// Any other failure, described.
    Msg(String),
}

impl Error {
    /// An error of `call` (doing `what`) from an [`io::Error`].
    pub fn os(call: Call, what: impl Into<String>, err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(errno) => Self::Os {
                what: what.into(),
                errno,
                hint: hint(call, errno),
            },
            None => Self::Msg(format!("{}: {err}", what.into())),
        }
    }

    /// An error of `call` (doing `what`) from the calling thread's errno.
    pub fn last_os(call: Call, what: impl Into<String>) -> Self {
        Self::os(call, what, &io::Error::last_os_error())
    }

    /// A failed netlink request (`what`): its errno and extended ack.
    pub fn netlink(what: impl Into<String>, errno: i32, ack: crate::cluster::Extack) -> Self {
        Self::Netlink {
            what: what.into(),
            errno,
            extack: ack.text(),
        }
    }

    /// The errno, for errors of a system call or a netlink request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Os { errno, .. } | Self::Netlink { errno, .. } => Some(*errno),
            Self::Msg(_) => None,
        }
    }

    /// The same error, with `prefix` placed in front of what was being done.
    pub fn context(self, prefix: &str) -> Self {
        match self {
            Self::Os { what, errno, hint } => Self::Os {
                what: format!("{prefix}: {what}"),
                errno,
                hint,
            },
            Self::Netlink {
                what,
                errno,
                extack,
            } => Self::Netlink {
                what: format!("{prefix}: {what}"),
                errno,
                extack,
            },
            Self::Msg(msg) => Self::Msg(format!("{prefix}: {msg}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Os { what, errno, hint } => {
                write!(f, "{what}: {}", strerror(*errno))?;
                match errno_name(*errno) {
                    Some(name) => write!(f, " ({name})")?,
                    None => write!(f, " (errno {errno})")?,
                }
                if let Some(hint) = hint {
                    write!(f, ": {hint}")?;
                }
                Ok(())
            }
            Self::Netlink {
                what,
                errno,
                extack,
            } => {
                // The kernel's own words when it gave some, else the errno's.
                let text = extack.clone().unwrap_or_else(|| strerror(*errno));
                write!(f, "{what}: {text}")?;
                match errno_name(*errno) {
                    Some(name) => write!(f, " ({name})")?,
                    None => write!(f, " (errno {errno})")?,
                }
                if *errno == libc::EPERM {
                    f.write_str(": CAP_NET_ADMIN is needed")?;
                }
                Ok(())
            }
            Self::Msg(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(msg: String) -> Self {
        Self::Msg(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_a_missing_module() {
        let err = Error::os(
            Call::SetGroup,
            "setsockopt(SO_SERVICE_GROUP)",
            &io::Error::from_raw_os_error(libc::ENOPROTOOPT),
        );
        assert_eq!(err.errno(), Some(libc::ENOPROTOOPT));
        assert_eq!(
            err.to_string(),
            "setsockopt(SO_SERVICE_GROUP): Protocol not available (ENOPROTOOPT): \
             module not loaded (insmod sockgroup.ko)"
        );
    }

    #[test]
    fn hints_depend_on_the_call() {
        assert_eq!(
            hint(Call::GetGroup, libc::ENOENT),
            Some("the socket is in no group")
        );
        assert!(hint(Call::PidfdGetfd, libc::EPERM)
            .unwrap()
            .contains("ptrace"));
        assert!(hint(Call::SetGroup, libc::EBUSY)
            .unwrap()
            .contains("another group"));
        assert_eq!(hint(Call::Other, libc::ENOENT), None);
        assert_eq!(hint(Call::PidfdOpen, libc::EBADF), None);
    }

    #[test]
    fn names_errnos_and_adds_context() {
        assert_eq!(errno_name(libc::EXDEV), Some("EXDEV"));
        assert_eq!(errno_name(4095), None);
        let err =
            Error::os(Call::Other, "bind", &io::Error::from_raw_os_error(4095)).context("member 2");
        assert!(err.to_string().starts_with("member 2: bind: "));
        assert!(err.to_string().ends_with("(errno 4095)"));
        let msg = Error::from("bad".to_owned()).context("show");
        assert_eq!(msg.to_string(), "show: bad");
        assert_eq!(msg.errno(), None);
    }
}
