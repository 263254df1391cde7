"The README's demo tables come from the committed run summary (docs/results/demo/) through scripts/readme_tables.py."
import json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import readme_tables as rt


def test_readme_and_index_match_the_committed_summary():
    assert rt.check() == [], "README/index tables differ from docs/results/demo: run `python scripts/readme_tables.py RUN_DIR --write`"


def test_a_changed_number_or_finding_is_caught(tmp_path):
    run = tmp_path / "run"; shutil.copytree(rt.COMMITTED, run)
    assert rt.check(run) == []
    t = run / "fewshot_1shot.md"; txt = t.read_text()
    t.write_text(txt.replace(" | ", " | 9", 1))
    assert rt.check(run) == ["nbs/index.ipynb", "README.md"]
    shutil.copy2(rt.COMMITTED / "fewshot_1shot.md", t)
    s = json.loads((run / "summary.json").read_text()); s["findings"][0] += " (changed)"
    (run / "summary.json").write_text(json.dumps(s))
    assert rt.check(run) == ["nbs/index.ipynb", "README.md"]
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), str(run), "--check"], capture_output=True, text=True)
    assert r.returncode == 1 and "--write" in r.stdout


def test_block_replacement_keeps_the_rest():
    text = f"before\n{rt.BEGIN}\nold\n{rt.END}\nafter\n"
    assert rt.replace_block(text, "new", "x") == f"before\n{rt.BEGIN}\nnew\n{rt.END}\nafter\n"
    assert rt.current_block(rt.replace_block(text, "new", "x"), "x") == "new"


def test_bad_run_folder_is_refused(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "summary.json: no such file" in r.stderr
    (tmp_path / "summary.json").write_text("{}")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "findings" in r.stderr


def test_readme_study_tables_match_the_committed_report():
    assert rt.check_study() == [], ("README/index study tables differ from docs/results/study: run "
                                    "`python scripts/readme_tables.py --study runs/study-readme --write`")


def test_a_changed_study_number_is_caught(tmp_path):
    rep = tmp_path / "study"; shutil.copytree(rt.STUDY_COMMITTED, rep)
    assert rt.check_study(rep) == []
    (rep / "report.md").write_text((rep / "report.md").read_text().replace("|", "| 9", 1))
    assert rt.check_study(rep) == ["nbs/index.ipynb", "README.md"]
