//! The shared option cases (`tests/options/cases.json`) through the C ABI:
//! `sluice_options_set` for every value, the verdict and the text of
//! `sluice_last_error()` as the table says. Python (`test_options.py`) and
//! Node (`options.test.js`) run the same cases; the process-wide settings'
//! cases go through `sluice_set`/`sluice_get` the same way.

use std::ffi::{CStr, CString};

use sluice::guard::{sluice_last_error, SLUICE_E_INVALID, SLUICE_OK};
use sluice::options::*;
use sluice_core::host::{Lang, OPTIONS};

/// `{name}` → the option's C name, `{unit}` → milliseconds.
fn expand(text: &str) -> String {
    let mut out = text.replace("{unit}", Lang::C.time_unit());
    for s in OPTIONS {
        out = out.replace(&format!("{{{}}}", s.name), s.name_in(Lang::C));
    }
    out
}

fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn the_shared_cases_get_the_same_verdicts_in_c() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/options/cases.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let o = sluice_options_new();
        let mut got = Ok(());
        for (name, value) in case["set"].as_object().unwrap() {
            let n = CString::new(name.as_str()).unwrap();
            let v = CString::new(as_text(value)).unwrap();
            // SAFETY: live options and NUL-terminated strings.
            let rc = unsafe { sluice_options_set(o, n.as_ptr(), v.as_ptr()) };
            if rc != SLUICE_OK {
                assert_eq!(rc, SLUICE_E_INVALID, "{case}");
                // SAFETY: sluice_last_error gives a NUL-terminated string.
                got = Err(unsafe { CStr::from_ptr(sluice_last_error()) }.to_str().unwrap().to_string());
                break;
            }
        }
        // SAFETY: from sluice_options_new, freed once.
        unsafe { sluice_options_free(o) };
        match case.get("error").and_then(|e| e.as_str()) {
            Some(e) => assert_eq!(got, Err(expand(e)), "{case}"),
            None => assert_eq!(got, Ok(()), "{case}"),
        }
    }
}

#[test]
fn the_typed_setters_take_the_table_rules() {
    let o = sluice_options_new();
    // SAFETY: live options.
    unsafe {
        assert_eq!(sluice_options_set_max_frame_size(o, 15), SLUICE_E_INVALID);
        let e = CStr::from_ptr(sluice_last_error()).to_str().unwrap();
        assert_eq!(e, "max_frame_size: must be a whole number from 16 to 4294967295, got 15");
        assert_eq!(sluice_options_set_watermarks(o, 100, 10), SLUICE_OK);
        assert_eq!(sluice_options_set_max_queued(o, 99), SLUICE_E_INVALID);
        assert_eq!(sluice_options_set_max_queued(o, 100), SLUICE_OK);
        // Refused: the options stay as they were.
        assert_eq!(sluice_options_set_watermarks(o, 1000, 10), SLUICE_E_INVALID);
        assert_eq!(sluice_options_set_read_size(o, 4096), SLUICE_OK);
        assert_eq!(sluice_options_set_close_linger_ms(o, 0), SLUICE_OK);
        sluice_options_free(o);
    }
}

/// A setting's current value as `sluice_get` gives it.
fn get(name: &str) -> Result<String, String> {
    let n = CString::new(name).unwrap();
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: a NUL-terminated name and a buffer of `buf.len()` bytes.
    let rc = unsafe { sluice_get(n.as_ptr(), buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) };
    // SAFETY: on success `buf` holds a NUL-terminated string; on failure
    // sluice_last_error does.
    unsafe {
        if rc == SLUICE_OK {
            Ok(CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string())
        } else {
            Err(CStr::from_ptr(sluice_last_error()).to_str().unwrap().to_string())
        }
    }
}

fn set(name: &str, value: &str) -> Result<(), String> {
    let (n, v) = (CString::new(name).unwrap(), CString::new(value).unwrap());
    // SAFETY: NUL-terminated strings.
    match unsafe { sluice_set(n.as_ptr(), v.as_ptr()) } {
        SLUICE_OK => Ok(()),
        rc => {
            assert_eq!(rc, SLUICE_E_INVALID);
            // SAFETY: sluice_last_error gives a NUL-terminated string.
            Err(unsafe { CStr::from_ptr(sluice_last_error()) }.to_str().unwrap().to_string())
        }
    }
}

#[test]
fn the_shared_settings_cases_get_the_same_verdicts_in_c() {
    use sluice_core::host::settings::SETTINGS;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/options/cases.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["settings"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let expand = |text: &str| {
        let mut out = text.replace("{unit}", Lang::C.time_unit());
        for s in SETTINGS {
            out = out.replace(&format!("{{{}}}", s.name), s.name_in(Lang::C));
        }
        out
    };
    // What every case starts from (io_threads cannot be set back once the
    // runtime runs; the cases never change it).
    let saved: Vec<(&str, String)> = SETTINGS.iter().filter(|s| s.name != "io_threads").map(|s| (s.name, get(s.name).unwrap())).collect();
    for case in cases {
        let pairs = case["set"].as_object().unwrap();
        // As in every language: the names are checked first, then the
        // values are set in order (those before a refused one stay set).
        let mut got = pairs.keys().try_for_each(|n| get(n).map(drop));
        if got.is_ok() {
            got = pairs.iter().try_for_each(|(n, v)| set(n, &as_text(v)));
        }
        match case.get("error").and_then(|e| e.as_str()) {
            Some(e) => assert_eq!(got, Err(expand(e)), "{case}"),
            None => assert_eq!(got, Ok(()), "{case}"),
        }
        if let Some(want) = case.get("get").and_then(|g| g.as_object()) {
            for (n, v) in want {
                assert_eq!(get(n).unwrap(), as_text(v), "{case}");
            }
        }
        for (n, v) in &saved {
            set(n, v).unwrap();
        }
    }
}
