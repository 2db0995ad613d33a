"""The model zoo (``imtrans zoo``): every published official model is listed with what rebuilds
it and what was reported for it (each number with its metric, FID code, split and source, or
where a number could come from); ``get`` imports a file placed by hand, resumes a cut download,
and offline or for Google Drive entries prints the notice, the URL, the place and the import
command (exit 2). No test touches the network: the opener is replaced, or a refused local proxy
is set."""

from __future__ import annotations

import email.message
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from imtrans.official import available_methods, get_format, zoo
from tests.official.helpers import fixture

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "OFFICIAL_CHECKPOINTS.md"
LEGACY = fixture("cyclegan") / "legacy_2018_pretrained" / "latest_net_G.pth"
METHODS = {
    "cyclegan",
    "pix2pix",
    "bicyclegan",
    "munit",
    "unit",
    "drit",
    "pix2pixhd",
    "cut",
    "stargan_v2",
    "spade",
}
#: published models per method (OFFICIAL_CHECKPOINTS.md section 2; CUT's README for cut; StarGAN
#: v2's download.sh: pretrained-network-afhq and -celeba-hq; SPADE's README: one archive of three)
COUNTS = {
    "cyclegan": 18,
    "pix2pix": 5,
    "bicyclegan": 5,
    "munit": 1,
    "unit": 1,
    "drit": 1,
    "pix2pixhd": 1,
    "cut": 6,
    "stargan_v2": 2,
    "spade": 3,
}
H2Z = "cyclegan_horse2zebra"
H2Z_PATH = Path("cyclegan_horse2zebra/checkpoints/horse2zebra_pretrained/latest_net_G.pth")

ENTRIES = zoo.load_zoo()


def _published_in_section_2(text: str) -> set[tuple[str, str]]:
    """(method, official name) of every row of the section 2 table: the names column cut at
    ';', parenthesised remarks removed (but '(+ name ...)' kept), split at commas; a cell like
    'Cityscapes `label2city_1024p`' gives its last word, '`example.pth`' gives 'example'."""
    section = text.split("## 2.", 1)[1].split("\n## ", 1)[0]
    found = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("method", "") or set(cells[0]) <= {"-"}:
            continue
        method = cells[0].lower()
        names = cells[1].split(";")[0]
        extra = re.findall(r"\(\+\s*([\w]+)", names)
        names = re.sub(r"\([^)]*\)", "", names)
        for raw in names.split(",") + extra:
            word = raw.replace("`", "").strip().split()[-1]
            found.add((method, re.sub(r"\.pth?$", "", word)))
    return found


# ----------------------------------------------------------------------------- the list
def test_counts_and_names_are_unique():
    counts = {m: sum(e["method"] == m for e in ENTRIES) for m in COUNTS}
    assert counts == COUNTS and len(ENTRIES) == 43
    names = [e["name"] for e in ENTRIES]
    assert len(set(names)) == len(names)
    assert all(e["name"] == f"{e['method']}_{e['official_name']}" for e in ENTRIES)


@pytest.mark.skipif(
    not SHARED.is_file(), reason="../shared/OFFICIAL_CHECKPOINTS.md not beside the repository"
)
def test_every_model_of_section_2_is_listed():
    published = _published_in_section_2(SHARED.read_text())
    assert len(published) == 32, sorted(published)
    listed = {(e["method"], e["official_name"]) for e in ENTRIES}
    assert published <= listed, sorted(published - listed)


def test_methods_options_and_fields():
    methods = {e["method"] for e in ENTRIES}
    assert methods <= METHODS
    available = set(available_methods())
    for e in ENTRIES:
        if e["method"] in available:  # formats are written in parallel; check those that exist
            assert set(e["options"]) <= set(get_format(e["method"]).OPTIONS), e["name"]
        assert e["files"] and e["urls"] and {"train", "test"} <= set(e["resolution"])
        assert [f["url"] for f in e["files"]] == e["urls"] or e["manual"]
        assert all(u.startswith(("http://", "https://")) for u in e["urls"])
        assert e["manual"] == ("drive.google.com" in e["urls"][0]), e["name"]
    if METHODS <= available:
        assert methods <= available


#: an official fixture file (reduced width) per method, to build each entry's model from; StarGAN
#: v2 per entry (the AFHQ layout: 3 domains, w_hpf 0; CelebA-HQ: 2 domains, w_hpf 1)
FIXTURE_FILES = {
    "cyclegan": LEGACY,
    "pix2pix": fixture("pix2pix") / "latest_net_G.pth",
    "bicyclegan": fixture("bicyclegan"),
    "munit": fixture("munit") / "gen_00000001.pt",
    "unit": fixture("unit") / "gen_00000001.pt",
    "drit": fixture("drit") / "00001.pth",
    "pix2pixhd": fixture("pix2pixhd") / "latest_net_G.pth",
    "cut": fixture("cut") / "latest_net_G.pth",
    "stargan_v2_afhq": fixture("stargan_v2") / "w_hpf0" / "000001_nets_ema.ckpt",
    "stargan_v2_celeba_hq": fixture("stargan_v2") / "w_hpf1" / "000001_nets_ema.ckpt",
}


# SPADE's entries are not built here: the importer checks each entry's dataset_mode (35, 150 or
# 182 labels) against the generator's input width, which the reduced fixtures (8 labels) fail on
# purpose; tests/official/test_spade.py imports the fixtures with their own options.


def fixture_file(entry: dict) -> Path:
    return FIXTURE_FILES.get(entry["name"], FIXTURE_FILES.get(entry["method"]))


@pytest.mark.filterwarnings("ignore:StarGAN v2 with w_hpf > 0 and model.fan=null")
@pytest.mark.parametrize("method", sorted(set(COUNTS) - {"spade"}))  # why not spade: below
def test_entries_build_with_the_importer(method, tmp_path):
    """Each entry's importer options and overrides combine with what the importer reads (here
    from the reduced official fixture): the module builds and loads, and the run config holds
    the entry's data preset and test resolution."""
    from omegaconf import OmegaConf

    from imtrans.official import import_official

    entries = [e for e in ENTRIES if e["method"] == method]
    if method not in available_methods() or not all(fixture_file(e).exists() for e in entries):
        pytest.skip(f"no {method} format module or fixture yet")
    for e in entries:
        out = import_official(method, fixture_file(e), tmp_path / e["name"], e["options"], e["overrides"])
        config = OmegaConf.load(out / "config.yaml")
        data = config.data
        for key in ("num_domains", "w_hpf"):  # StarGAN v2: the fixture of the entry's layout
            if key in e["official_options"]:
                assert config.model[key] == e["official_options"][key], (e["name"], key)
        for override in e["overrides"]:
            key, _, value = override.partition("=")
            if key in ("data.load_size", "data.crop_size", "data.direction", "data.preprocess"):
                assert str(data[key.split(".")[1]]) == value, (e["name"], key)
        if "data.root=${paths.data_dir}/" + e["data"] in e["overrides"]:
            assert str(data.root).endswith(f"/{e['data']}"), e["name"]


def test_list_show_and_unknown_name(capsys):
    zoo.main([])
    out = capsys.readouterr().out
    assert all(e["name"] in out for e in ENTRIES) and "manual download (Google Drive)" in out
    zoo.main(["show", "pix2pixhd_label2city_1024p"])
    out = capsys.readouterr().out
    assert "manual: true" in out and "imtrans import pix2pixhd" in out and "data.preprocess=none" in out
    with pytest.raises(SystemExit) as exit_:
        zoo.main(["get", "horse2zebr"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err
    assert "unknown model 'horse2zebr'" in err and "cyclegan_horse2zebra" in err


# ----------------------------------------------------------------------------- reported numbers
def test_every_entry_reports_numbers_or_says_where_from():
    """Each number carries what makes it comparable (metric, FID code, split, which model, the
    source and its URL); an entry without numbers says where one could come from."""
    for e in ENTRIES:
        assert e["reported"] or e["reported_note"].strip(), e["name"]
        for item in e["reported"]:
            assert all(item[k] not in (None, "") for k in zoo.REPORTED_FIELDS), (e["name"], item)
            assert isinstance(item["value"], (int, float)) and item["url"].startswith("https://")
            if item["metric"] in ("FID", "KID"):
                assert item["lineage"] in zoo.FID_LINEAGES, (e["name"], item["lineage"])
    with_numbers = {e["name"] for e in ENTRIES if e["reported"]}
    assert len(with_numbers) >= 19 and {"stargan_v2_afhq", "cut_horse2zebra_cut"} <= with_numbers


def _numbers(name: str) -> set[tuple]:
    return {
        (i["metric"], i["lineage"], i["value"], i.get("spread")) for i in zoo.find(name, ENTRIES)["reported"]
    }


def test_the_numbers_the_sources_give():
    """The numbers of issue 27 as their sources print them: clean-fid's leaderboard (pytorch-fid
    lineage reproduced, clean-fid), mmagic's comparison, StarGAN v2's README with its spreads."""
    for name, legacy, clean in [
        ("cut_horse2zebra_cut", 45.51, 43.71),
        ("cut_horse2zebra_fastcut", 73.38, 72.53),
        ("cut_cat2dog_cut", 76.21, 77.58),
        ("cut_cat2dog_fastcut", 93.95, 95.37),
    ]:
        assert {("FID", "pytorch-fid", legacy, None), ("FID", "clean-fid", clean, None)} <= _numbers(name)
    assert {("FID", "mmagic", 62.111, None), ("FID", "mmagic", 77.202, None)} <= _numbers(
        "cyclegan_horse2zebra"
    )
    lpips = "stargan-v2 (LPIPS v0.1 alex)"
    for name, latent, reference in [
        ("stargan_v2_afhq", [(16.18, 0.15), (0.4501, 0.0007)], [(19.78, 0.01), (0.4315, 0.0002)]),
        ("stargan_v2_celeba_hq", [(13.73, 0.06), (0.4515, 0.0006)], [(23.84, 0.03), (0.3880, 0.0001)]),
    ]:
        expected = {("FID", "stargan-v2", *latent[0]), ("LPIPS", lpips, *latent[1])}
        expected |= {("FID", "stargan-v2", *reference[0]), ("LPIPS", lpips, *reference[1])}
        assert _numbers(name) == expected
        assert {i["weights"] for i in zoo.find(name, ENTRIES)["reported"]} == {"published"}
        scored = {(i["metric"], i["score"]) for i in zoo.find(name, ENTRIES)["reported"]}
        assert scored == {("FID", "latent/mean/fid"), ("LPIPS", "latent/mean/lpips_div"),
                          ("FID", "reference/mean/fid"), ("LPIPS", "reference/mean/lpips_div")}  # fmt: skip
    # SPADE's Table 1 (mIoU, accuracy, FID with pytorch-fid: SPADE#14), per data set
    for name, miou, accu, fid in [
        ("spade_cityscapes", 62.3, 81.9, 71.8),
        ("spade_ade20k", 38.5, 79.9, 33.9),
        ("spade_coco", 37.4, 67.9, 22.6),
    ]:
        numbers = {(metric, value) for metric, _, value, _ in _numbers(name)}
        assert numbers == {("mIoU", miou), ("pixel accuracy", accu), ("FID", fid)}
        assert ("FID", "pytorch-fid", fid, None) in _numbers(name)


def _broken(**changes) -> list[dict]:
    entry = json.loads(json.dumps(zoo.find("cut_horse2zebra_cut", ENTRIES)))
    for key, value in changes.items():
        if key == "item":
            entry["reported"][0].update(value)
            entry["reported"][0] = {k: v for k, v in entry["reported"][0].items() if v is not None}
        else:
            entry[key] = value
    return [entry]


@pytest.mark.parametrize(
    "changes,words",
    [
        ({"item": {"lineage": None}}, ["reported[0]", "no lineage", "value, metric, lineage, split"]),
        ({"item": {"split": ""}}, ["no split"]),
        ({"item": {"lineage": "tensorflow"}}, ["lineage='tensorflow'", "pytorch-fid, clean-fid"]),
        ({"item": {"value": "45.51"}}, ["value='45.51'", "not a number"]),
        ({"item": {"weights": "official"}}, ["weights='official'", "published, paper"]),
        ({"item": {"table": 1}}, ["unknown field(s) table"]),
        ({"reported": [], "reported_note": None}, ["reported=[] without reported_note", "where a number"]),
        ({"reported": None}, ["reported=None", "not a list"]),
    ],
)
def test_an_incomplete_number_is_refused_in_one_line(changes, words):
    with pytest.raises(zoo.ZooError) as err:
        zoo.check_reported(_broken(**changes), "zoo.yaml")
    message = str(err.value)
    assert message.startswith("zoo.yaml: cut_horse2zebra_cut") and "\n" not in message
    assert all(w in message for w in words), message


def test_table_and_show_give_the_numbers_and_their_sources(capsys):
    zoo.main([])
    lines = capsys.readouterr().out.splitlines()
    assert "REPORTED" in lines[0]
    row = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert "FID 45.51 (pytorch-fid); FID 43.71 (clean-fid)" in row["cut_horse2zebra_cut"]
    assert "FID 16.18 ±0.15 (stargan-v2); LPIPS 0.4501 ±0.0007" in row["stargan_v2_afhq"]
    assert "FID 77.2 (pytorch-fid); FID 75.17 (clean-fid)" in row["cyclegan_horse2zebra"]
    assert (
        "FID 138.646 (mmagic)" in row["cyclegan_zebra2horse"] and "137.05" not in row["cyclegan_zebra2horse"]
    )
    assert row["bicyclegan_maps"].split()[4] == "-"

    zoo.main(["show", "cut_horse2zebra_cut"])
    out = capsys.readouterr().out
    assert "lineage: clean-fid" in out and "https://github.com/GaParmar/clean-fid" in out
    assert "Legacy-FID (reproduced)" in out and "reported_about:" in out
    zoo.main(["show", "bicyclegan_maps"])
    out = capsys.readouterr().out
    assert "reported: 'none published for this model: the BicycleGAN paper" in out


@pytest.mark.filterwarnings("ignore:StarGAN v2 with w_hpf > 0 and model.fan=null")
def test_stargan_v2_entries_import_a_placed_file_with_the_official_layout(tmp_path, monkeypatch, capsys):
    """stargan_v2_celeba_hq: the nets file placed where download.sh puts it is imported with the
    entry's data preset and test resolution; the optional wing.ckpt missing on the server is skipped."""
    from omegaconf import OmegaConf

    def server(request, timeout):
        assert request.full_url.endswith("wing.ckpt?dl=1"), request.full_url
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", email.message.Message(), None)

    monkeypatch.setattr(zoo, "urlopen", server)
    name = "stargan_v2_celeba_hq"
    placed = tmp_path / "root" / name / "expr" / "checkpoints" / "celeba_hq" / "100000_nets_ema.ckpt"
    placed.parent.mkdir(parents=True)
    shutil.copy(fixture_file(zoo.find(name, ENTRIES)), placed)
    zoo.main(["get", name, f"root={tmp_path / 'root'}", f"out={tmp_path / 'run'}"])
    assert "wing.ckpt?dl=1 is not on the server, skipped" in capsys.readouterr().out
    record = json.loads((tmp_path / "run" / "import.json").read_text())
    assert record["method"] == "stargan_v2" and record["networks_fresh"] == ["discriminator"]
    assert record["official_options"]["num_domains"] == 2 and record["official_options"]["w_hpf"] == 1
    config = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert (config.data.name, config.data.crop_size, config.data.resample) == ("celeba_hq", 256, "bilinear")


# ----------------------------------------------------------------------------- get
def _no_network(*args, **kwargs):
    raise AssertionError("the network must not be touched")


@pytest.mark.parametrize(
    "error", [urllib.error.URLError(OSError(101, "Network is unreachable")), TimeoutError("timed out")]
)
def test_get_offline_prints_the_notice_and_the_command(error, tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise error

    monkeypatch.setattr(zoo, "urlopen", offline)
    with pytest.raises(SystemExit) as exit_:
        zoo.main(["get", H2Z, f"root={tmp_path}", f"out={tmp_path / 'out'}"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("imtrans zoo: offline: cannot reach efrosgans.eecs.berkeley.edu")
    text = "\n".join(lines)
    assert "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth" in text
    assert str(tmp_path / H2Z_PATH) in text
    assert (
        f"imtrans import cyclegan {tmp_path / H2Z_PATH} out={tmp_path / 'out'} direction=a2b "
        "data=horse2zebra data.load_size=256 data.crop_size=256"
    ) in text
    assert not (tmp_path / "out").exists()


def test_get_offline_subprocess_with_a_refused_proxy(tmp_path):
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imtrans.official.zoo",
            "get",
            H2Z,
            f"root={tmp_path}",
            f"out={tmp_path / 'o'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("imtrans zoo: offline: ")
    assert f"then: imtrans import cyclegan {tmp_path / H2Z_PATH} out={tmp_path / 'o'}" in proc.stdout


def test_get_manual_entry_says_fetch_by_hand(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "urlopen", _no_network)
    with pytest.raises(SystemExit) as exit_:
        zoo.main(["get", "munit_edges2shoes", f"root={tmp_path}"])
    assert exit_.value.code == 2
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "must be fetched by hand" in first and "Google Drive" in first
    assert "https://drive.google.com/drive/folders/10IEa7gibOWmQQuJUIUOkh-CV4cm6k8__" in out
    assert str(tmp_path / "munit_edges2shoes" / "models" / "edges2shoes.pt") in out
    assert "imtrans import munit" in out and "data=edges2shoes" in out


def test_get_a_file_placed_by_hand_imports_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "urlopen", _no_network)
    placed = tmp_path / "root" / H2Z_PATH
    placed.parent.mkdir(parents=True)
    shutil.copy(LEGACY, placed)
    zoo.main(["get", H2Z, f"root={tmp_path / 'root'}", f"out={tmp_path / 'run'}"])
    out = capsys.readouterr().out
    assert "not downloaded again" in out and "imtrans import: notice: dropped 51 legacy key(s)" in out
    record = json.loads((tmp_path / "run" / "import.json").read_text())
    assert record["method"] == "cyclegan" and record["networks_imported"] == ["G_A"]
    assert "data=horse2zebra" in record["overrides"] and "data.load_size=256" in record["overrides"]
    digest = hashlib.sha256(LEGACY.read_bytes()).hexdigest()
    assert record["files"][0]["sha256"] == digest
    assert json.loads(placed.with_name(placed.name + ".json").read_text())["sha256"] == digest
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


class _Response:
    """An HTTP response of a local fake server: ``data`` from ``start``, cut after ``cut`` bytes
    (a dropped connection) when given."""

    def __init__(self, data: bytes, start: int, status: int, cut: int | None = None):
        self.status = status
        self.headers = email.message.Message()
        self.headers["Content-Length"] = str(len(data) - start)
        self.body = io.BytesIO(data[start:])
        self.cut = cut

    def read(self, n: int) -> bytes:
        if self.cut is not None and self.body.tell() >= self.cut:
            raise ConnectionResetError(104, "Connection reset by peer")
        return self.body.read(n if self.cut is None else min(n, self.cut - self.body.tell()))

    def getcode(self) -> int:
        return self.status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_resumes_from_the_part_file_then_imports(tmp_path, monkeypatch, capsys):
    data = LEGACY.read_bytes()
    half = len(data) // 2
    calls = []

    def server(request, timeout):
        rng = request.get_header("Range")
        calls.append(rng)
        if rng is None:
            return _Response(data, 0, 200, cut=half)  # the first try breaks off half way
        start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
        return _Response(data, start, 206)

    monkeypatch.setattr(zoo, "urlopen", server)
    args = ["get", H2Z, f"root={tmp_path}", f"out={tmp_path / 'run'}"]
    with pytest.raises(SystemExit) as exit_:
        zoo.main(args)
    assert exit_.value.code == 2
    out = capsys.readouterr().out
    assert f"interrupted after {half} bytes" in out and "run the same command again to resume" in out
    target = tmp_path / H2Z_PATH
    part = target.with_name(target.name + ".part")
    assert part.read_bytes() == data[:half] and not target.exists()

    zoo.main(args)
    assert calls == [None, f"bytes={half}-"]
    assert target.read_bytes() == data and not part.exists()
    digest = hashlib.sha256(data).hexdigest()
    assert f"sha256 {digest}" in capsys.readouterr().out
    info = json.loads(target.with_name(target.name + ".json").read_text())
    assert (
        info["sha256"] == digest and info["bytes"] == len(data) and info["url"].endswith("/horse2zebra.pth")
    )
    assert json.loads((tmp_path / "run" / "import.json").read_text())["files"][0]["sha256"] == digest


def test_a_server_ignoring_range_restarts_the_file(tmp_path, monkeypatch):
    data = bytes(range(256)) * 40
    target = tmp_path / "f.pth"
    target.with_name("f.pth.part").write_bytes(b"stale bytes")
    monkeypatch.setattr(zoo, "urlopen", lambda request, timeout: _Response(data, 0, 200))
    assert zoo.download("http://example.invalid/f.pth", target).read_bytes() == data


def test_http_error_is_one_notice(tmp_path, monkeypatch, capsys):
    def missing(request, timeout):
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", email.message.Message(), None)

    monkeypatch.setattr(zoo, "urlopen", missing)
    with pytest.raises(SystemExit) as exit_:
        zoo.main(["get", "drit_example", f"root={tmp_path}"])
    out = capsys.readouterr().out
    assert exit_.value.code == 2 and "HTTP 404 Not Found" in out.splitlines()[0]
    assert "imtrans import drit" in out


def test_an_optional_file_missing_on_the_server_is_skipped(tmp_path, monkeypatch, capsys):
    """bicyclegan_maps (tested with --no_encode): G is fetched, a 404 for E is not an error."""
    g = (fixture("bicyclegan") / "latest_net_G.pth").read_bytes()

    def server(request, timeout):
        if request.full_url.endswith("maps_net_E.pth"):
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", email.message.Message(), None)
        return _Response(g, 0, 200)

    monkeypatch.setattr(zoo, "urlopen", server)
    zoo.main(["get", "bicyclegan_maps", f"root={tmp_path}", f"out={tmp_path / 'run'}"])
    assert "maps_net_E.pth is not on the server, skipped" in capsys.readouterr().out
    record = json.loads((tmp_path / "run" / "import.json").read_text())
    assert record["networks_imported"] == ["G"] and "data.crop_size=512" in record["overrides"]


# ----------------------------------------------------------------------------- archives (CUT's tar)
CUT_H2Z = "cut_horse2zebra_fastcut"
CUT_MEMBER = "checkpoints/horse2zebra_fastcut_pretrained/latest_net_G.pth"


def _cut_tar(path: Path, members: dict[str, Path]) -> bytes:
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, source in members.items():
            tar.add(source, arcname=f"./{name}")  # the leading ./ of `tar -cf x.tar .` archives
    return path.read_bytes()


def test_an_archive_is_downloaded_unpacked_and_imported(tmp_path, monkeypatch, capsys):
    g = fixture("cut") / "latest_net_G.pth"
    data = _cut_tar(tmp_path / "src" / "pretrained_models.tar", {CUT_MEMBER: g, "checkpoints/other/x.pth": g})
    monkeypatch.setattr(zoo, "urlopen", lambda request, timeout: _Response(data, 0, 200))
    zoo.main(["get", CUT_H2Z, f"root={tmp_path / 'root'}", f"out={tmp_path / 'run'}"])
    folder = tmp_path / "root" / CUT_H2Z
    assert (folder / CUT_MEMBER).read_bytes() == g.read_bytes()
    assert not (folder / "checkpoints" / "other").exists()  # only this model's member
    record = json.loads((tmp_path / "run" / "import.json").read_text())
    assert record["method"] == "cut" and record["networks_imported"] == ["G"]
    assert "model.mode=fastcut" in record["overrides"] and "data=horse2zebra" in record["overrides"]
    assert "unpacked " + CUT_MEMBER in capsys.readouterr().out


def test_an_archive_placed_in_root_or_unpacked_members_are_used(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "urlopen", _no_network)
    g = fixture("cut") / "latest_net_G.pth"
    root = tmp_path / "root"
    _cut_tar(root / "pretrained_models.tar", {CUT_MEMBER: g})  # one copy for the six entries
    zoo.main(["get", CUT_H2Z, f"root={root}", f"out={tmp_path / 'a'}"])
    assert (root / CUT_MEMBER).is_file() and "not downloaded again" in capsys.readouterr().out
    (root / "pretrained_models.tar").unlink()  # an official checkout: the members alone
    zoo.main(["get", CUT_H2Z, f"root={root}", f"out={tmp_path / 'b'}"])
    assert "are there, not downloaded again" in capsys.readouterr().out
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").is_file()


def test_an_archive_without_the_member_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "urlopen", _no_network)
    root = tmp_path / "root"
    _cut_tar(
        root / CUT_H2Z / "pretrained_models.tar",
        {"checkpoints/else/latest_net_G.pth": fixture("cut") / "latest_net_G.pth"},
    )
    with pytest.raises(SystemExit) as exit_:
        zoo.main(["get", CUT_H2Z, f"root={root}", f"out={tmp_path / 'run'}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"no member {CUT_MEMBER!r}" in err and "checkpoints/else/latest_net_G.pth" in err
    assert not (tmp_path / "run").exists()
