//! Setting bits of the kernel's `hl_tgid_bits` bitmap (one bit per process id that owns a
//! tracked connection) from userspace: through an mmap of the array, with the same atomic
//! OR the BPF programs use. A read-modify-write through the map syscalls could erase a bit
//! the kernel set in the same word meanwhile. The mapping is dropped right after: it would
//! otherwise count the whole bitmap (512 KiB) in the probe's RSS.

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{bail, Result};
use aya::maps::MapData;
use homelab_ebpf as abi;

const LEN: usize = abi::HL_TGID_WORDS;

/// Marks these processes as owning a tracked connection.
pub fn mark(map: &MapData, tgids: impl IntoIterator<Item = u32>) -> Result<()> {
    let bytes = LEN * std::mem::size_of::<u64>();
    // SAFETY: maps the array's value area (BPF_F_MMAPABLE), shared with the kernel.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            map.fd().as_fd().as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        bail!("mmap of hl_tgid_bits: {}", std::io::Error::last_os_error());
    }
    let words = ptr.cast::<AtomicU64>();
    for tgid in tgids {
        let word = (tgid >> 6) as usize;
        if word < LEN {
            // SAFETY: word < LEN, inside the mapping, which is only accessed atomically.
            let w = unsafe { &*words.add(word) };
            w.fetch_or(1 << (tgid & 63), Ordering::Relaxed);
        }
    }
    // SAFETY: unmaps exactly what was mapped above; no reference outlives this point.
    unsafe { libc::munmap(ptr, bytes) };
    Ok(())
}
