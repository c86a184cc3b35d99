//! A first sync of a long list is one short history line and one short cron mail: past
//! `HISTORY_LIST_AT_MOST` names the history keeps the first ones with their totals, and the printed
//! listing says where the rest are.

mod support;

use support::bits;

#[test]
fn a_long_first_sync_keeps_the_history_line_short() {
    let dir = tempfile::tempdir().unwrap();
    let n = bits_tls::state::HISTORY_LIST_AT_MOST + 30;
    let mut csv = String::from("Virksomhet;Domene\n");
    for i in 0..n {
        csv.push_str(&format!("Deltaker {i};d{i:05}.no\n"));
    }
    std::fs::write(dir.path().join("liste.csv"), csv).unwrap();
    let out = bits()
        .current_dir(dir.path())
        .args(["sync", "-s", "liste.csv", "-o", "exim-domains=exim"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains(&format!(
            "  + … and {} more (the history names the first {}; the state has the whole list)\n",
            n - 20,
            bits_tls::state::HISTORY_LIST_AT_MOST
        )),
        "{text}"
    );
    let history = std::fs::read_to_string(dir.path().join("bits-tls.history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1);
    let entry: serde_json::Value = serde_json::from_str(history.trim_end()).unwrap();
    let added = entry["domains_added"].as_array().unwrap();
    assert_eq!(added.len(), bits_tls::state::HISTORY_LIST_AT_MOST);
    assert_eq!(added[0], "d00000.no");
    assert_eq!(entry["totals"]["domains_added"], n);
    assert_eq!(entry["totals"]["participants_joined"], n);
    assert_eq!(
        entry["participants_joined"].as_array().unwrap().len(),
        bits_tls::state::HISTORY_LIST_AT_MOST
    );
    // The whole list is in the state.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("bits-tls.state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["participants"].as_array().unwrap().len(), n);
}
