from pathlib import Path

from characterization.overview import BEGIN, END, write_overview


def test_overview_reports_missing_inputs_and_keeps_other_sections(tmp_path: Path):
    (tmp_path / "index.md").write_text("<!-- characterization:begin -->\nkept\n<!-- characterization:end -->\n")
    (tmp_path / "validation.csv").write_text(
        "exact_vs_ngspice_rel,gnonideal_vs_exact_rel\n2e-9,1e-15\n")
    page = write_overview(tmp_path).read_text()
    assert page.index(BEGIN) < page.index(END) < page.index("kept")
    assert "**NOT met**" in page  # 2e-9 > 1e-9
    assert "bench_dnn.csv missing" in page and "fcm_speed.csv missing" in page
    write_overview(tmp_path)
    assert (tmp_path / "index.md").read_text().count(BEGIN) == 1
