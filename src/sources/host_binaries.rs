//! Host programs with their ELF interpreter and shared-library closure.
