//! Feeds a `Connection` with segments decoded from the fuzzer's bytes and
//! checks that its memory stays bounded.
#![no_main]

use httpflow::{Connection, Direction, Limits, Segment, Side};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let side = if flags & 1 == 0 {
        Side::Server
    } else {
        Side::Client
    };
    let mut conn = if flags & 2 == 0 {
        Connection::new(side)
    } else {
        Connection::mid_stream(side, Limits::default())
    };
    let mut out = Vec::new();
    let mut ts = 0u64;
    // Each record: control byte, length byte, then up to that many bytes.
    while let [ctrl, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        ts += 1;
        if ctrl & 0x80 != 0 {
            conn.on_close(ts, &mut out);
            continue;
        }
        let dir = if ctrl & 1 == 0 {
            Direction::Read
        } else {
            Direction::Write
        };
        // Bits 1-3: head capture; bits 4-6: uncaptured bytes in the middle.
        let head = bytes.len().min(usize::from((ctrl >> 1) & 7) * 16 + 1);
        let gap = usize::from((ctrl >> 4) & 7) * 997;
        let len = bytes.len() + gap;
        let seg = Segment {
            len,
            head: &bytes[..head],
            tail: &bytes[head..],
            ts_ns: ts,
        };
        conn.on_segment(dir, seg, &mut out);
        assert!(conn.heap_bytes() <= 200 * 1024);
        out.clear();
    }
    conn.on_close(ts + 1, &mut out);
});
