// SPDX-License-Identifier: GPL-2.0

//! The system calls of sgctl: `SO_SERVICE_GROUP`, the pidfd calls and
//! `setns`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Call, Error};
use crate::model::{Group, Policy};
use crate::uapi::{self, SO_SERVICE_GROUP};

/// Members a first getsockopt buffer has room for; larger groups grow it.
const FIRST_GUESS_MEMBERS: usize = 4;

/// Links `fd` and `others` into one group (a ring in that order), or takes
/// `fd` out of its group when `others` is empty.  `flags` are
/// `SOCKGROUP_F_*`; with `stall_ms` the request is version 2 (stall rescue
/// after that many ms, 0: off), else version 1.
pub fn set_group(
    fd: BorrowedFd<'_>,
    policy: Policy,
    flags: u32,
    stall_ms: Option<u32>,
    others: &[RawFd],
) -> Result<(), Error> {
    let req = uapi::encode_request(policy, flags, stall_ms, others);
    let len = libc::socklen_t::try_from(req.len()).expect("request fits a socklen_t");
    // SAFETY: req is a live buffer of len bytes, which the kernel only reads.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_SERVICE_GROUP,
            req.as_ptr().cast(),
            len,
        )
    };
    if ret != 0 {
        return Err(Error::last_os(
            Call::SetGroup,
            "setsockopt(SO_SERVICE_GROUP)",
        ));
    }
    Ok(())
}

/// Reads the group of `fd`, growing the buffer while the kernel answers
/// `ERANGE` with the size it needs.
///
/// It asks for the version 2 reply (`SOCKGROUP_VERSION_2` in the buffer's
/// first `__u32`); a module that predates it answers with version 1, which
/// decodes too (without the stall rescue fields).
pub fn get_group(fd: BorrowedFd<'_>) -> Result<Group, Error> {
    let what = "getsockopt(SO_SERVICE_GROUP)";
    let mut size = uapi::reply_size_v2(FIRST_GUESS_MEMBERS);
    // A group can grow between two calls; a few rounds are plenty.
    for _ in 0..8 {
        let mut buf = vec![0u8; size];
        buf[..4].copy_from_slice(&uapi::SOCKGROUP_VERSION_2.to_ne_bytes());
        let mut len = libc::socklen_t::try_from(size).expect("buffer fits a socklen_t");
        // SAFETY: buf is writable for len bytes and len is a valid socklen_t.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_SERVICE_GROUP,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if ret == 0 {
            buf.truncate(len as usize);
            return uapi::decode_reply(&buf).map_err(|e| Error::Msg(format!("{what}: {e}")));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(Error::os(Call::GetGroup, what, &err));
        }
        size = (len as usize).max(size * 2);
    }
    Err(Error::Msg(format!(
        "{what}: the reply kept growing (ERANGE); try again"
    )))
}

/// Converts the result of a syscall returning an fd into an [`OwnedFd`].
fn owned_fd(ret: libc::c_long, call: Call, what: String) -> Result<OwnedFd, Error> {
    if ret < 0 {
        return Err(Error::last_os(call, what));
    }
    let fd = RawFd::try_from(ret).expect("the kernel returns fds that fit an int");
    // SAFETY: the syscall succeeded, so fd is a new open fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open(pid, 0)`: a handle on process `pid`.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Error> {
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    owned_fd(ret, Call::PidfdOpen, format!("pidfd_open(pid {pid})"))
}

/// `pidfd_getfd(pidfd, fd, 0)`: a copy, in this process, of `fd` of the
/// process behind `pidfd` (it shares the same open socket).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> Result<OwnedFd, Error> {
    // SAFETY: pidfd_getfd takes three integers and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    owned_fd(ret, Call::PidfdGetfd, "pidfd_getfd".to_owned())
}

/// Moves this process into the network namespace `name`: a name that
/// `ip netns add` made (`/run/netns/NAME`), or a path to a namespace file
/// (`/proc/PID/ns/net`). Called before any socket is opened, since a
/// socket belongs to the namespace it was created in.
pub fn enter_netns(name: &str) -> Result<(), Error> {
    let path = if name.contains('/') {
        std::path::PathBuf::from(name)
    } else {
        std::path::Path::new("/run/netns").join(name)
    };
    let file = std::fs::File::open(&path)
        .map_err(|e| Error::os(Call::Other, format!("opening {}", path.display()), &e))?;
    // SAFETY: setns takes an fd that `file` keeps open for the call and an
    // integer, and touches no memory of ours.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::last_os(
            Call::Other,
            format!("setns({}, CLONE_NEWNET)", path.display()),
        ));
    }
    Ok(())
}

/// The device and inode of the file behind `fd` (`fstat(2)`): two fds
/// with the same ones refer to the same socket.
pub fn file_id(fd: BorrowedFd<'_>) -> Result<(libc::dev_t, libc::ino_t), Error> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is writable for a struct stat, which fstat fills on success.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(Error::last_os(Call::Other, "fstat"));
    }
    // SAFETY: fstat succeeded, so st is initialised.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsFd;

    // These run on any host: without the module the option is unknown, with
    // it a fresh socket is in no group.  Either way it is a clear errno.
    #[test]
    fn an_ungrouped_socket_has_no_group() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let errno = get_group(l.as_fd()).unwrap_err().errno();
        assert!(matches!(errno, Some(libc::ENOPROTOOPT | libc::ENOENT)));
    }

    #[test]
    fn takes_a_copy_of_an_own_fd() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let pidfd = match pidfd_open(std::process::id() as libc::pid_t) {
            Ok(fd) => fd,
            // Kernels before 5.3 and some sandboxes have no pidfd_open.
            Err(e) if e.errno() == Some(libc::ENOSYS) => return,
            Err(e) => panic!("{e}"),
        };
        match pidfd_getfd(pidfd.as_fd(), l.as_raw_fd()) {
            Ok(copy) => {
                let copy = TcpListener::from(copy);
                assert_eq!(copy.local_addr().unwrap(), l.local_addr().unwrap());
            }
            Err(e) => assert!(matches!(e.errno(), Some(libc::EPERM | libc::ENOSYS)), "{e}"),
        }
        let err = pidfd_getfd(pidfd.as_fd(), 99_999).unwrap_err();
        assert!(matches!(
            err.errno(),
            Some(libc::EBADF | libc::EPERM | libc::ENOSYS)
        ));
    }

    #[test]
    fn tells_sockets_apart() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let a2 = a.try_clone().unwrap();
        let id = file_id(a.as_fd()).unwrap();
        assert_eq!(file_id(a2.as_fd()).unwrap(), id);
        assert_ne!(file_id(b.as_fd()).unwrap(), id);
    }

    #[test]
    fn a_missing_namespace_is_named() {
        let msg = enter_netns("sgctl-test-no-such-ns")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/run/netns/sgctl-test-no-such-ns"), "{msg}");
        let msg = enter_netns("/nonexistent/ns").unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/ns"), "{msg}");
    }
}
