//! Go executables: their Go version (`.go.buildinfo`) and where a function starts and returns,
//! from the `.gopclntab` function table, which `strip` leaves in place (Debian's caddy has no
//! other symbols). The formats are Go's own (`runtime/symtab.go`, `debug/buildinfo`); no
//! maintained Rust crate reads them, and only the function table is needed here.

use std::{fs::File, path::Path};

use anyhow::{anyhow, bail, Context, Result};
use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};
use object::{read::ReadCache, Object, ObjectSection};

/// A function found in the pclntab, as uprobe file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoFunction {
    pub entry: u64,
    /// One per RET instruction of the function body.
    pub rets: Vec<u64>,
}

/// What is known of a Go executable.
#[derive(Debug)]
pub struct GoBinary {
    /// As in the build info, e.g. `go1.19.8`.
    pub version: String,
    /// (major, minor), e.g. (1, 19).
    pub release: (u32, u32),
    /// The requested functions the binary has, in the order asked; None for a missing one.
    pub functions: Vec<Option<GoFunction>>,
}

/// Ok(None) when the file is not a Go executable (no `.go.buildinfo` section). Only the
/// sections needed are read.
pub fn inspect(path: &Path, names: &[&str]) -> Result<Option<GoBinary>> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let cache = ReadCache::new(file);
    let Ok(elf) = object::File::parse(&cache) else {
        return Ok(None);
    };
    let Some(buildinfo) = elf.section_by_name(".go.buildinfo") else {
        return Ok(None);
    };
    let buildinfo = buildinfo.data().context(".go.buildinfo")?;
    let version = build_version(&elf, buildinfo).context("reading .go.buildinfo")?;
    let release = parse_release(&version)
        .ok_or_else(|| anyhow!("unrecognised Go version {version:?} in .go.buildinfo"))?;
    if elf.architecture() != object::Architecture::X86_64 {
        bail!(
            "{version} binary for {:?}: only x86_64 is supported",
            elf.architecture()
        );
    }
    let pclntab = elf
        .section_by_name(".gopclntab")
        .ok_or_else(|| anyhow!("{version} binary without a .gopclntab section"))?;
    let text = elf
        .section_by_name(".text")
        .ok_or_else(|| anyhow!("no .text section"))?;
    // A position-independent executable leaves the header's text address to a dynamic
    // relocation, whose addend is that address.
    let text_field = pclntab.address() + TEXT_START_FIELD;
    let relocated = elf.dynamic_relocations().and_then(|mut relocs| {
        relocs.find_map(|(at, r)| (at == text_field).then(|| r.addend() as u64))
    });
    let table = FuncTable::parse(pclntab.data().context(".gopclntab")?, relocated)
        .context("reading .gopclntab")?;
    let (text_offset, _) = text
        .file_range()
        .ok_or_else(|| anyhow!(".text has no file data"))?;
    let functions = names
        .iter()
        .zip(table.find(names)?)
        .map(|(name, found)| {
            let Some((start, end)) = found else {
                return Ok(None);
            };
            // Only the function's bytes are read: .text can be hundreds of MB.
            let code = text
                .data_range(start, end - start)
                .ok()
                .flatten()
                .ok_or_else(|| anyhow!("{name} at {start:#x} lies outside .text"))?;
            // A wrong address would put a breakpoint inside an instruction and corrupt the
            // program: check that it is the start of a Go function first.
            if !checks_stack_guard(code, start) {
                bail!(
                    "{name} at {start:#x} does not start with Go's stack check on R14 \
                     (not the register ABI, or a misread function table)"
                );
            }
            let to_file = |addr: u64| addr - text.address() + text_offset;
            Ok(Some(GoFunction {
                entry: to_file(start),
                rets: ret_addresses(code, start)
                    .into_iter()
                    .map(to_file)
                    .collect(),
            }))
        })
        .collect::<Result<_>>()?;
    Ok(Some(GoBinary {
        version,
        release,
        functions,
    }))
}

/// `go1.19.8` -> (1, 19); also `devel go1.22-abcdef ...`.
pub fn parse_release(version: &str) -> Option<(u32, u32)> {
    let rest = &version[version.find("go1.")? + 2..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The addresses of the RET instructions in a function's machine code loaded at `start`.
fn ret_addresses(code: &[u8], start: u64) -> Vec<u64> {
    Decoder::with_ip(64, code, start, DecoderOptions::NONE)
        .into_iter()
        .filter(|i| i.mnemonic() == Mnemonic::Ret)
        .map(|i| i.ip())
        .collect()
}

/// Go functions open with a stack-bound check against the goroutine's stack guard
/// (`g.stackguard0`, 16 bytes into g), and under the register ABI g is in R14:
/// `cmp rsp, [r14+16]`, or for large frames `lea r12, [rsp-N]; cmp r12, [r14+16]`.
/// (Functions marked nosplit have no check; crypto/tls's Read, Write and handshake do.)
fn checks_stack_guard(code: &[u8], start: u64) -> bool {
    Decoder::with_ip(64, code, start, DecoderOptions::NONE)
        .into_iter()
        .take(2)
        .any(|i| {
            i.mnemonic() == Mnemonic::Cmp
                && i.memory_base() == Register::R14
                && i.memory_displacement64() == 16
        })
}

const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Flag bit of the build info header: the version is stored inline (Go 1.18+).
const BUILDINFO_INLINE: u8 = 2;

/// The Go version recorded by the linker. Since Go 1.18 it is a length-prefixed string at
/// offset 32; before, a pointer at offset 16 leads to a Go string header (data, len).
fn build_version<'d>(elf: &object::File<'d, &'d ReadCache<File>>, info: &[u8]) -> Result<String> {
    if info.len() < 32 || !info.starts_with(BUILDINFO_MAGIC) {
        bail!("no build info header");
    }
    let (ptr_size, flags) = (info[14] as usize, info[15]);
    if flags & 1 != 0 {
        bail!("big-endian binary");
    }
    if flags & BUILDINFO_INLINE != 0 {
        let (len, n) = uvarint(&info[32..]).ok_or_else(|| anyhow!("bad version length"))?;
        let s = info
            .get(32 + n..32 + n + len as usize)
            .ok_or_else(|| anyhow!("version past the section end"))?;
        return Ok(String::from_utf8_lossy(s).into_owned());
    }
    if ptr_size != 8 {
        bail!("pointer size {ptr_size}");
    }
    let header = le_u64(info, 16).ok_or_else(|| anyhow!("short header"))?;
    let header = read_at(elf, header, 16)?;
    let (data, len) = (
        le_u64(header, 0).unwrap_or(0),
        le_u64(header, 8).unwrap_or(0),
    );
    if len > 256 {
        bail!("version string of {len} bytes");
    }
    Ok(String::from_utf8_lossy(read_at(elf, data, len)?).into_owned())
}

/// `len` bytes at virtual address `addr` of the executable's file.
fn read_at<'d>(
    elf: &object::File<'d, &'d ReadCache<File>>,
    addr: u64,
    len: u64,
) -> Result<&'d [u8]> {
    elf.sections()
        .find(|s| s.address() <= addr && addr + len <= s.address() + s.size())
        .and_then(|s| s.data_range(addr, len).ok().flatten())
        .ok_or_else(|| anyhow!("address {addr:#x} is in no section"))
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Offset of the text start in the Go 1.18+ pclntab header.
const TEXT_START_FIELD: u64 = 8 + 2 * 8;

/// pclntab magics: Go 1.16-1.17, 1.18-1.19, 1.20 and later.
const PCLN_GO116: u32 = 0xffff_fffa;
const PCLN_GO118: u32 = 0xffff_fff0;
const PCLN_GO120: u32 = 0xffff_fff1;

/// The function table of a pclntab: sorted (entry address, `_func` offset) pairs, with the
/// end address of the last function as a final entry.
struct FuncTable<'a> {
    names: &'a [u8],
    functab: &'a [u8],
    nfunc: usize,
    /// Entries are offsets from the start of the text (Go 1.18+) or addresses (1.16-1.17).
    relative: bool,
    text_start: u64,
}

impl<'a> FuncTable<'a> {
    /// `relocated`: the text start given by a dynamic relocation, if there is one.
    fn parse(tab: &'a [u8], relocated: Option<u64>) -> Result<Self> {
        let magic = le_u32(tab, 0).ok_or_else(|| anyhow!("empty"))?;
        let relative = match magic {
            PCLN_GO118 | PCLN_GO120 => true,
            PCLN_GO116 => false,
            _ => bail!("unknown pclntab magic {magic:#x} (Go older than 1.16?)"),
        };
        if tab.get(7) != Some(&8) {
            bail!("pointer size is not 8");
        }
        // Header words after the 8 fixed bytes: nfunc, nfiles, [textStart,] funcnameOffset,
        // cuOffset, filetabOffset, pctabOffset, pclnOffset.
        let word = |i: usize| le_u64(tab, 8 + 8 * i).ok_or_else(|| anyhow!("short header"));
        let skip = usize::from(relative);
        let nfunc = word(0)? as usize;
        let text_start = match (relative, relocated) {
            (false, _) => 0,
            (true, Some(address)) => address,
            (true, None) => word(2)?,
        };
        if relative && text_start == 0 {
            bail!("no text start address in the header");
        }
        let names_off = word(2 + skip)? as usize;
        let functab_off = word(6 + skip)? as usize;
        let slice = |from: usize| {
            tab.get(from..)
                .ok_or_else(|| anyhow!("offset past the end"))
        };
        Ok(FuncTable {
            names: slice(names_off)?,
            functab: slice(functab_off)?,
            nfunc,
            relative,
            text_start,
        })
    }

    /// (entry address, `_func` offset) of function `i`; `i == nfunc` gives the end of text.
    fn entry(&self, i: usize) -> Option<(u64, usize)> {
        if self.relative {
            let e = le_u32(self.functab, 8 * i)?;
            let f = le_u32(self.functab, 8 * i + 4)?;
            Some((self.text_start + u64::from(e), f as usize))
        } else {
            let e = le_u64(self.functab, 16 * i)?;
            let f = le_u64(self.functab, 16 * i + 8)?;
            Some((e, f as usize))
        }
    }

    fn name(&self, func_off: usize) -> Option<&'a [u8]> {
        // `_func` starts with the entry (u32 offset since 1.18, else an address), then the
        // i32 offset of the name in the function name table.
        let at = func_off + if self.relative { 4 } else { 8 };
        let off = le_u32(self.functab, at)? as usize;
        let s = self.names.get(off..)?;
        Some(&s[..s.iter().position(|&b| b == 0)?])
    }

    /// Start and end address of each function named, in one pass over the table.
    fn find(&self, names: &[&str]) -> Result<Vec<Option<(u64, u64)>>> {
        let mut found = vec![None; names.len()];
        for i in 0..self.nfunc {
            let (start, func) = self.entry(i).ok_or_else(|| anyhow!("truncated table"))?;
            let Some(name) = self.name(func) else {
                continue;
            };
            let Some(k) = names.iter().position(|n| n.as_bytes() == name) else {
                continue;
            };
            let (end, _) = self
                .entry(i + 1)
                .ok_or_else(|| anyhow!("truncated table"))?;
            if end <= start {
                bail!("{}: function table out of order", names[k]);
            }
            found[k] = Some((start, end));
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("go1.19.8"), Some((1, 19)));
        assert_eq!(parse_release("go1.22rc1"), Some((1, 22)));
        assert_eq!(parse_release("devel go1.23-4f7b2c0 Tue"), Some((1, 23)));
        assert_eq!(parse_release("gccgo"), None);
    }

    #[test]
    fn finds_every_ret() {
        // mov rax, 1; ret; cmp rax, rbx; jne -> ret imm16; ret 8; int3 padding
        let code = [
            0x48, 0xc7, 0xc0, 0x01, 0, 0, 0, 0xc3, 0x48, 0x39, 0xd8, 0x75, 0x00, 0xc2, 0x08, 0x00,
            0xcc, 0xcc,
        ];
        assert_eq!(ret_addresses(&code, 0x1000), vec![0x1007, 0x100d]);
    }

    #[test]
    fn stack_guard_check() {
        // cmp rsp, [r14+0x10]
        assert!(checks_stack_guard(&[0x49, 0x3b, 0x66, 0x10], 0));
        // lea r12, [rsp-0x68]; cmp r12, [r14+0x10]
        let large = [0x4c, 0x8d, 0x64, 0x24, 0x98, 0x4d, 0x3b, 0x66, 0x10];
        assert!(checks_stack_guard(&large, 0));
        // cmp rsp, [rcx+0x10] (Go before 1.17 loads g from TLS into a register first)
        assert!(!checks_stack_guard(&[0x48, 0x3b, 0x61, 0x10], 0));
        // the second byte of that instruction
        assert!(!checks_stack_guard(&[0x3b, 0x66, 0x10, 0x90], 0));
    }

    #[test]
    fn a_c3_byte_inside_an_instruction_is_not_a_ret() {
        // mov eax, 0xc3c3c3c3; ret
        let code = [0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3];
        assert_eq!(ret_addresses(&code, 0), vec![5]);
    }

    /// Debian's caddy is stripped: the functions come from .gopclntab alone.
    #[test]
    fn stripped_caddy_from_debian() {
        let path = Path::new("/usr/bin/caddy");
        if !path.exists() {
            eprintln!("skipped: /usr/bin/caddy not installed (scripts/setup-debian)");
            return;
        }
        let names = [
            "crypto/tls.(*Conn).Read",
            "crypto/tls.(*Conn).Write",
            "no.such",
        ];
        let bin = inspect(path, &names).unwrap().expect("a Go binary");
        assert!(bin.release >= (1, 17), "{}", bin.version);
        let read = bin.functions[0].as_ref().expect("Read");
        let write = bin.functions[1].as_ref().expect("Write");
        assert!(bin.functions[2].is_none());
        assert_ne!(read.entry, write.entry);
        for f in [read, write] {
            assert!(!f.rets.is_empty());
            assert!(f.rets.iter().all(|&r| r > f.entry));
        }
        // The entry is the start of a Go function: its stack check reads g from R14,
        // `cmp rsp, [r14+16]` (49 3b 66 10) under the register ABI.
        let bytes = std::fs::read(path).unwrap();
        let at = read.entry as usize;
        assert_eq!(&bytes[at..at + 4], &[0x49, 0x3b, 0x66, 0x10]);
        for &r in &read.rets {
            assert_eq!(bytes[r as usize], 0xc3);
        }
    }

    #[test]
    fn not_go() {
        let exe = std::env::current_exe().unwrap();
        assert!(inspect(&exe, &["main"]).unwrap().is_none());
    }
}
