//! The kernel's `hl_tgid_bits` bitmap (one bit per process id that owns a tracked
//! connection), mapped into this process so that bits can be set with the same atomic OR
//! the BPF programs use: a read-modify-write through the map syscalls could erase a bit the
//! kernel set in the same word meanwhile.

use std::{
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{bail, Result};
use aya::maps::{Map, MapData};
use homelab_ebpf as abi;

pub struct TgidBits {
    words: NonNull<AtomicU64>,
    /// Keeps the map's file descriptor open for as long as the mapping is used.
    _map: MapData,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for TgidBits {}

const LEN: usize = abi::HL_TGID_WORDS;

impl TgidBits {
    pub fn new(map: Map) -> Result<Self> {
        let Map::Array(map) = map else {
            bail!("map hl_tgid_bits is not an array");
        };
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
        let words = NonNull::new(ptr.cast::<AtomicU64>()).expect("mmap returned null");
        Ok(Self { words, _map: map })
    }

    /// Marks a process as owning a tracked connection.
    pub fn mark(&self, tgid: u32) {
        let word = (tgid >> 6) as usize;
        if word < LEN {
            // SAFETY: word < LEN, inside the mapping, which lives as long as self.
            let w = unsafe { &*self.words.as_ptr().add(word) };
            w.fetch_or(1 << (tgid & 63), Ordering::Relaxed);
        }
    }
}

impl Drop for TgidBits {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what new() mapped.
        unsafe { libc::munmap(self.words.as_ptr().cast(), LEN * std::mem::size_of::<u64>()) };
    }
}
