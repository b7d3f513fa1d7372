// SPDX-License-Identifier: GPL-2.0

//! Arbitrary bytes from the network into the stream assembler and every
//! message decoder: no panic, no read out of bounds (the codec allocates
//! nothing; the only buffer is the reader's, of FRAME_MAX bytes).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::frame::{Frame, FrameReader, Msg, MsgType, MAX_TRANSFER_ENTRIES, FRAME_MAX};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size the stream arrives in.
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split) + 1;
    let mut buf = vec![0u8; FRAME_MAX];
    let mut r = FrameReader::new();
    'stream: for mut piece in stream.chunks(chunk) {
        while !piece.is_empty() {
            let (n, res) = r.feed(&mut buf, piece);
            piece = &piece[n..];
            match res {
                Ok(Some(f)) => decode(&f),
                Ok(None) => assert!(n > 0),
                Err(_) => break 'stream,
            }
        }
    }
    // The whole input as the payload of every type, too.
    for ty in MsgType::ALL {
        check(Msg::decode(ty, stream));
    }
});

fn decode(f: &Frame<'_>) {
    check(Msg::of(f));
}

fn check(m: Result<Msg<'_>, sockgroup_logic::frame::FrameError>) {
    if let Ok(Msg::Transfer(t)) = m {
        assert!(t.len() <= MAX_TRANSFER_ENTRIES);
        assert_eq!(t.entries().count(), t.len());
    }
}
