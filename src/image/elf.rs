//! The program interpreter (`PT_INTERP`) of an ELF file, read from the
//! start of the file only. Linkers place the program header table and the
//! interpreter path near the start, so a short prefix of a base image's
//! executable is enough to check it, without keeping the whole program.

use goblin::container::Ctx;
use goblin::elf::program_header::{PT_INTERP, ProgramHeader};
use goblin::elf::{Elf, Header};

/// Size of the ELF header of a 64-bit file, the larger of the two classes.
const HEADER_BYTES: u64 = 64;

/// Returns how many leading bytes of the file hold its ELF header, its
/// program header table and its interpreter path, as far as `prefix`
/// shows. Call it again after reading more, because the interpreter's
/// position is known only once the table is in `prefix`. Returns `None`
/// when `prefix` is not the start of an ELF file.
pub fn interpreter_prefix_len(prefix: &[u8]) -> Option<u64> {
    if !prefix.starts_with(b"\x7fELF") {
        return None;
    }
    if (prefix.len() as u64) < HEADER_BYTES {
        return Some(HEADER_BYTES);
    }

    let header = Elf::parse_header(prefix).ok()?;
    let table_end = program_table_end(&header)?;
    if (prefix.len() as u64) < table_end {
        return Some(table_end);
    }

    let interpreter_end = program_headers(prefix, &header)?
        .iter()
        .find(|program_header| program_header.p_type == PT_INTERP)
        .map_or(0, |interp| interp.p_offset.saturating_add(interp.p_filesz));
    Some(table_end.max(interpreter_end))
}

/// Returns the interpreter path of the ELF file that starts with `bytes`,
/// such as `/lib64/ld-linux-x86-64.so.2`. Returns `None` for a file that is
/// not ELF, has no interpreter (a static program) or is cut off before the
/// path ends.
pub fn interpreter(bytes: &[u8]) -> Option<String> {
    let header = Elf::parse_header(bytes).ok()?;
    let interp =
        program_headers(bytes, &header)?.into_iter().find(|program_header| program_header.p_type == PT_INTERP)?;

    let start = usize::try_from(interp.p_offset).ok()?;
    let end = start.checked_add(usize::try_from(interp.p_filesz).ok()?)?;
    let path = bytes.get(start..end)?;
    let path = path.split(|&byte| byte == 0).next().unwrap_or_default();
    (!path.is_empty()).then(|| String::from_utf8_lossy(path).into_owned())
}

fn program_table_end(header: &Header) -> Option<u64> {
    let table_size = u64::from(header.e_phnum) * u64::from(header.e_phentsize);
    header.e_phoff.checked_add(table_size)
}

fn program_headers(bytes: &[u8], header: &Header) -> Option<Vec<ProgramHeader>> {
    let ctx = Ctx::new(header.container().ok()?, header.endianness().ok()?);
    let offset = usize::try_from(header.e_phoff).ok()?;
    ProgramHeader::parse(bytes, offset, usize::from(header.e_phnum), ctx).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a little-endian 64-bit ELF executable whose only program
    /// header is a `PT_INTERP` for `interpreter` at file offset
    /// `interpreter_offset`, padded with `tail` zero bytes after the path.
    pub(crate) fn elf_with_interpreter(interpreter: &str, interpreter_offset: usize, tail: usize) -> Vec<u8> {
        let path_len = interpreter.len() + 1;
        let mut bytes = vec![0u8; interpreter_offset + path_len + tail];

        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2; // ELFCLASS64
        bytes[5] = 1; // ELFDATA2LSB
        bytes[6] = 1; // EV_CURRENT
        bytes[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        bytes[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        bytes[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum

        let program_header = &mut bytes[64..120];
        program_header[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
        program_header[8..16].copy_from_slice(&(interpreter_offset as u64).to_le_bytes());
        program_header[32..40].copy_from_slice(&(path_len as u64).to_le_bytes());
        program_header[40..48].copy_from_slice(&(path_len as u64).to_le_bytes());

        bytes[interpreter_offset..interpreter_offset + interpreter.len()].copy_from_slice(interpreter.as_bytes());
        bytes
    }

    #[test]
    fn interpreter_read_from_file() {
        let bytes = elf_with_interpreter("/lib/ld-musl-x86_64.so.1", 120, 4096);

        assert_eq!(interpreter(&bytes).as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
    }

    #[test]
    fn interpreter_of_host_program() {
        let bytes = std::fs::read("/bin/true").expect("read /bin/true");

        let prefix_len = interpreter_prefix_len(&bytes).unwrap() as usize;

        assert!(interpreter(&bytes).is_some_and(|path| path.contains("/ld-")), "{:?}", interpreter(&bytes));
        assert_eq!(interpreter(&bytes[..prefix_len]), interpreter(&bytes));
    }

    #[test]
    fn prefix_len_grows_with_prefix() {
        let bytes = elf_with_interpreter("/lib/ld.so", 5000, 100);

        assert_eq!(interpreter_prefix_len(&bytes[..16]), Some(64));
        assert_eq!(interpreter_prefix_len(&bytes[..64]), Some(120));
        assert_eq!(interpreter_prefix_len(&bytes[..120]), Some(5011));
    }

    #[test]
    fn interpreter_cut_off_is_none() {
        let bytes = elf_with_interpreter("/lib/ld.so", 5000, 0);

        assert_eq!(interpreter(&bytes[..5004]), None);
    }

    #[test]
    fn script_is_not_elf() {
        assert_eq!(interpreter_prefix_len(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(interpreter(b"#!/bin/sh\necho hi\n"), None);
    }
}
