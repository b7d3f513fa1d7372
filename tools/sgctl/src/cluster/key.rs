// SPDX-License-Identifier: GPL-2.0

//! Peer keys, read from a file.
//!
//! A key file holds 16 to 64 bytes, either raw (e.g. `head -c 32
//! /dev/urandom`) or as hex text (e.g. `openssl rand -hex 32`): a file whose
//! content is only hex digits, an even number of them, optionally followed by
//! a newline, is read as hex; anything else is taken as raw bytes.  Like ssh
//! with its private keys, sgctl refuses a key file that its group or others
//! may read or write, unless told `--insecure-key-file`.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroize;

use super::attrs::Key;
use crate::error::Error;

/// Fewest bytes of a key.
pub const KEY_MIN: usize = 16;
/// Most bytes of a key.
pub const KEY_MAX: usize = 64;
/// A key file longer than this is refused without reading it all.
const FILE_MAX: u64 = 4096;

/// The key of `content`: hex text if it is only hex digits (an even number,
/// optionally followed by one newline), else the raw bytes; 16..64 bytes.
pub fn parse_key(content: &[u8]) -> Result<Key, String> {
    let text = content
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(content);
    let is_hex =
        !text.is_empty() && text.len().is_multiple_of(2) && text.iter().all(u8::is_ascii_hexdigit);
    let (bytes, kind) = if is_hex {
        let bytes = text
            .chunks(2)
            .map(|pair| {
                let digit = |c: u8| (c as char).to_digit(16).unwrap() as u8;
                digit(pair[0]) << 4 | digit(pair[1])
            })
            .collect::<Vec<u8>>();
        (bytes, "hex digits' ")
    } else {
        (content.to_vec(), "")
    };
    let key = Key::new(bytes);
    let len = key.as_bytes().len();
    if !(KEY_MIN..=KEY_MAX).contains(&len) {
        return Err(format!(
            "a key is {KEY_MIN} to {KEY_MAX} bytes, the file holds {len} {kind}bytes"
        ));
    }
    Ok(key)
}

/// Reads the key file at `path`: a regular file, not readable or writable
/// by group or others unless `insecure`.
pub fn read_key_file(path: &Path, insecure: bool) -> Result<Key, Error> {
    let name = path.display();
    let mut file = File::open(path).map_err(|e| Error::Msg(format!("key file {name}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::Msg(format!("key file {name}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::Msg(format!("key file {name}: not a regular file")));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 && !insecure {
        return Err(Error::Msg(format!(
            "key file {name}: permissions {mode:04o} are too open: group and others must not \
             read or write a key (chmod 600 {name}, or --insecure-key-file)"
        )));
    }
    if meta.size() > FILE_MAX {
        return Err(Error::Msg(format!(
            "key file {name}: {} bytes, more than any key",
            meta.size()
        )));
    }
    let mut content = Vec::with_capacity(FILE_MAX as usize + 1);
    let read = file
        .by_ref()
        .take(FILE_MAX + 1)
        .read_to_end(&mut content)
        .map_err(|e| Error::Msg(format!("key file {name}: {e}")));
    let key = read
        .and_then(|_| parse_key(&content).map_err(|e| Error::Msg(format!("key file {name}: {e}"))));
    content.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn raw_and_hex_keys() {
        let raw: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        assert_eq!(parse_key(&raw).unwrap().as_bytes(), &raw[..]);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        for text in [
            hex.clone(),
            format!("{hex}\n"),
            format!("{hex}\r\n"),
            hex.to_uppercase(),
        ] {
            assert_eq!(
                parse_key(text.as_bytes()).unwrap().as_bytes(),
                &raw[..],
                "{text:?}"
            );
        }
        // 16 and 64 bytes, raw and hex, are keys; 15 and 65 are not.
        for len in [16, 64] {
            assert_eq!(parse_key(&vec![0xffu8; len]).unwrap().as_bytes().len(), len);
            assert_eq!(
                parse_key("ab".repeat(len).as_bytes())
                    .unwrap()
                    .as_bytes()
                    .len(),
                len
            );
        }
        for len in [0, 15, 65] {
            assert!(parse_key(&vec![0xffu8; len]).is_err(), "{len} raw bytes");
        }
        let err = parse_key("ab".repeat(15).as_bytes()).unwrap_err();
        assert_eq!(
            err,
            "a key is 16 to 64 bytes, the file holds 15 hex digits' bytes"
        );
        assert!(parse_key("ab".repeat(65).as_bytes()).is_err());
        // An odd count of hex digits, or a non-hex character, makes it raw.
        let odd = "a".repeat(33);
        assert_eq!(
            parse_key(odd.as_bytes()).unwrap().as_bytes(),
            odd.as_bytes()
        );
        let text = format!("{}g", "ab".repeat(10));
        assert_eq!(
            parse_key(text.as_bytes()).unwrap().as_bytes(),
            text.as_bytes()
        );
    }

    #[test]
    fn keys_are_never_printed() {
        let key = parse_key(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{key:?}"), "Key(16 bytes)");
    }

    fn key_file(dir: &Path, name: &str, mode: u32, content: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .unwrap();
        f.write_all(content).unwrap();
        // The umask may have taken bits away.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn key_file_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let hex = b"00112233445566778899aabbccddeeff\n";
        let ok = key_file(dir.path(), "ok", 0o600, hex);
        assert_eq!(read_key_file(&ok, false).unwrap().as_bytes()[15], 0xff);
        let ro = key_file(dir.path(), "ro", 0o400, hex);
        assert!(read_key_file(&ro, false).is_ok());
        for (name, mode) in [("g", 0o640), ("o", 0o604), ("gw", 0o620), ("all", 0o666)] {
            let path = key_file(dir.path(), name, mode, hex);
            let err = read_key_file(&path, false).unwrap_err().to_string();
            assert!(
                err.contains(&format!("permissions {mode:04o} are too open")),
                "{err}"
            );
            assert!(err.contains("--insecure-key-file"), "{err}");
            assert_eq!(read_key_file(&path, true).unwrap().as_bytes().len(), 16);
        }
        let err = read_key_file(dir.path(), false).unwrap_err().to_string();
        assert!(err.ends_with("not a regular file"), "{err}");
        let err = read_key_file(&dir.path().join("none"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("No such file"), "{err}");
        let big = key_file(dir.path(), "big", 0o600, &[7u8; 5000]);
        assert!(read_key_file(&big, false)
            .unwrap_err()
            .to_string()
            .contains("more than any key"));
        let short = key_file(dir.path(), "short", 0o600, b"abc");
        let err = read_key_file(&short, false).unwrap_err().to_string();
        assert!(err.ends_with("the file holds 3 bytes"), "{err}");
    }
}
