//! Step processes: `sh -c` in their own process group, output streamed line by line, the
//! group killed on timeout, cancel or engine death. Being written; see issue 3.
