//! Prints how fast `Connection` reconstructs exchanges on keep-alive
//! traffic, fully captured and with a 1 KiB head / 64 B tail capture.
//!
//!     cargo run --release -p httpflow --example throughput

use std::time::Instant;

use httpflow::{Connection, Direction, Segment, Side};

fn run(label: &str, head_cap: usize, tail_cap: usize) {
    let request = b"GET /api/items/42?expand=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n";
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
            .to_vec();
    response.resize(response.len() + 4096, b'x');
    let seg = |data: &[u8], ts| {
        let h = head_cap.min(data.len());
        let t = if h == data.len() {
            0
        } else {
            tail_cap.min(data.len())
        };
        (data.len(), h, t, ts)
    };
    let n = 1_000_000u64;
    let mut conn = Connection::new(Side::Server);
    let mut out = Vec::with_capacity(1);
    let mut done = 0u64;
    let start = Instant::now();
    for i in 0..n {
        for (dir, data) in [
            (Direction::Read, &request[..]),
            (Direction::Write, &response[..]),
        ] {
            let (len, h, t, ts) = seg(data, i);
            let s = Segment {
                len,
                head: &data[..h],
                tail: &data[len - t..],
                ts_ns: ts,
            };
            conn.on_segment(dir, s, &mut out);
        }
        done += out.len() as u64;
        out.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label}: {done} exchanges in {secs:.2} s: {:.0} exchanges/s, {:.0} ns per exchange",
        done as f64 / secs,
        secs * 1e9 / done.max(1) as f64
    );
}

fn main() {
    println!(
        "Connection: {} bytes inline (plus buffers only while a head spans segments)",
        std::mem::size_of::<Connection>()
    );
    run("full capture", usize::MAX, 0);
    run("1 KiB head + 64 B tail", 1024, 64);
}
