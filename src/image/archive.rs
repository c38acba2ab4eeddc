//! `docker load` archives.
