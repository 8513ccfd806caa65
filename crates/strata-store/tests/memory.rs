//! Download memory stays within its bound (parts in flight × part size), measured with a
//! counting global allocator over the whole process: client, runtime and HTTP stack.

use strata_store::{Store, TransferConfig};
use strata_testkit::{S3Endpoint, S3Server, data};

#[global_allocator]
static ALLOC: strata_testkit::alloc::Counting = strata_testkit::alloc::Counting;

#[test]
fn download_memory_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let size: u64 = 256 << 20;
    let crc = data::write_file(&src, 5, size).unwrap();

    // The server runs in its own process-wide runtime but in this process; its allocations
    // count too, so the bound below is conservative for the client.
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let up = TransferConfig {
        upload_part_size: 16 << 20,
        upload_concurrency: 4,
        ..store.config().transfer.clone()
    };
    rt.block_on(store.upload_file(&src, "big.bin", &up, None))
        .unwrap();

    for (part, conc) in [(4u64 << 20, 4usize), (8 << 20, 8)] {
        let opts = TransferConfig {
            part_size: part,
            concurrency: conc,
            ..store.config().transfer.clone()
        };
        let bound = part * conc as u64;
        let dest = dir.path().join(format!("out-{part}-{conc}.bin"));
        let base = strata_testkit::alloc::reset_peak();
        let report = rt
            .block_on(store.download_to_file("big.bin", &dest, &opts, None))
            .unwrap();
        let grew = (strata_testkit::alloc::peak() - base) as u64;
        assert_eq!(report.crc32c, crc, "content");
        assert_eq!(report.bytes, size);
        assert!(
            report.peak_buffered <= bound,
            "engine's own count {} > bound {bound}",
            report.peak_buffered
        );
        // Allow 25% plus 8 MiB for the HTTP stack, runtime and server buffers; a download that
        // held the object (256 MiB) or unbounded parts would exceed it many times over.
        let allowed = bound + bound / 4 + (8 << 20);
        println!(
            "part {} MiB × {conc}: bound {} MiB, heap grew {:.1} MiB",
            part >> 20,
            bound >> 20,
            grew as f64 / (1 << 20) as f64
        );
        assert!(
            grew <= allowed,
            "heap grew {grew} bytes, more than {allowed} (bound {bound})"
        );
    }
}
