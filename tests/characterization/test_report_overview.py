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


def test_overview_gives_each_energy_scheme_range_from_the_csv(tmp_path: Path):
    (tmp_path / "dnn_energy_sensing.csv").write_text(
        "network,mapping,sensing,energy_vs_default\n"
        "a,differential,separate,1.0\na,differential,differential,0.95\na,offset,separate,0.6\n"
        "b,differential,separate,1.0\nb,differential,differential,0.9\nb,offset,separate,0.7\n")
    page = write_overview(tmp_path).read_text()
    assert ("over the 2 networks: differential mapping, differential sensing 0.900-0.950x; "
            "offset mapping, separate sensing 0.600-0.700x") in page
