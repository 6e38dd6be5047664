//! The JSON Schemas shipped in `schemas/json/` are the ones generated from
//! the Avro schemas, so the two encodings describe the same records.

use sessionflow_codec::json_schema;
use std::path::PathBuf;

#[test]
fn the_shipped_json_schemas_are_generated_from_the_avro_schemas() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())).join("../../schemas/json");
    let shipped = json_schema::shipped().unwrap();
    assert_eq!(shipped.len(), 3);
    for (name, schema) in shipped {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == json_schema::to_text(&schema),
            "schemas/json/{name} is not what the Avro schemas give: run `cargo run --release -- json-schemas --out-dir schemas/json`"
        );
    }
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 3, "schemas/json holds a file no Avro schema generates");
}
