//! Job files from the job directory, placed under the image workdir.
