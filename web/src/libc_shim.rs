//! The C allocator (and `strcpy`) for `openjp2` on wasm32-unknown-unknown.
//!
//! `openjp2` (the Rust port of OpenJPEG that `dicom-pixeldata` uses for JPEG 2000) calls
//! `malloc`/`calloc`/`realloc`/`free` through `extern "C"`; wasm32-unknown-unknown has no libc,
//! so the final module would not link. These forward to Rust's global allocator, keeping the
//! size in a 16-byte header in front of each block.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, realloc as grow};

const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe fn allocate(size: usize, zeroed: bool) -> *mut u8 {
    let Some(l) = layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `l` has a non-zero size (at least the header).
    let base = unsafe { if zeroed { alloc_zeroed(l) } else { alloc(l) } };
    if base.is_null() {
        return base;
    }
    // SAFETY: the block is at least HEADER bytes and 16-aligned.
    unsafe {
        (base as *mut usize).write(size);
        base.add(HEADER)
    }
}

/// # Safety
/// C `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut u8 {
    unsafe { allocate(size, false) }
}

/// # Safety
/// C `calloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size) {
        Some(total) => unsafe { allocate(total, true) },
        None => std::ptr::null_mut(),
    }
}

/// # Safety
/// C `free`: `p` is null or came from these functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    unsafe {
        let base = p.sub(HEADER);
        let size = (base as *const usize).read();
        dealloc(base, layout(size).expect("size was valid when allocated"));
    }
}

/// # Safety
/// C `realloc`: `p` is null or came from these functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return unsafe { malloc(size) };
    }
    let Some(new) = layout(size) else {
        return std::ptr::null_mut();
    };
    unsafe {
        let base = p.sub(HEADER);
        let old = (base as *const usize).read();
        let moved = grow(
            base,
            layout(old).expect("size was valid when allocated"),
            new.size(),
        );
        if moved.is_null() {
            return moved;
        }
        (moved as *mut usize).write(size);
        moved.add(HEADER)
    }
}

/// # Safety
/// C `strcpy`: `src` is NUL-terminated and `dst` large enough.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strcpy(dst: *mut u8, src: *const u8) -> *mut u8 {
    let mut i = 0;
    unsafe {
        loop {
            let c = *src.add(i);
            *dst.add(i) = c;
            if c == 0 {
                return dst;
            }
            i += 1;
        }
    }
}
