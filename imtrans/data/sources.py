"""Where the named data sets come from and how they must be laid out on disk.

Used by the download helper (``python -m imtrans.data.download NAME``) and by the data modules,
whose "data.root not found" errors point at it.
"""

from __future__ import annotations

from dataclasses import dataclass

_CYCLEGAN = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip"
_PIX2PIX = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"

UNPAIRED_TREE = "{trainA,trainB,testA,testB}/*.jpg"
SIDE_BY_SIDE_TREE = "{train,val[,test]}/*.jpg  (each image: A on the left half, B on the right)"
DOMAINS_TREE = "{train,val}/{cat,dog,wild}/*.jpg"
CITYSCAPES_TREE = (
    "train_label/*_gtFine_labelIds.png      (gtFine/train/<city>/)\n"
    "train_inst/*_gtFine_instanceIds.png    (gtFine/train/<city>/)\n"
    "train_img/*_leftImg8bit.png            (leftImg8bit/train/<city>/)\n"
    "test_label/, test_inst/, test_img/     (the same files from the val split)"
)
CITYSCAPES_HOWTO = (
    "Cityscapes needs a (free) account: log in at https://www.cityscapes-dataset.com/downloads/, "
    "download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, unpack them and copy or "
    "link the files flat (without the city folders) into the pix2pixHD layout below."
)

CITYSCAPES_CUT_TREE = "{trainA,trainB,valA,valB}/*.jpg  (A: photos, B: colour label maps, 256x256)"
CITYSCAPES_CUT_HOWTO = (
    "Cityscapes needs a (free) account: download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip "
    "from https://www.cityscapes-dataset.com/downloads/, then run datasets/prepare_cityscapes_dataset.py of "
    "https://github.com/taesungp/contrastive-unpaired-translation (it writes the 256x256 JPEGs CUT trained "
    "and evaluated on; its README links the val set cityscapes_val_for_CUT.tar)"
)


@dataclass(frozen=True)
class Source:
    """A named data set: its archive URL (None: manual download), archive file name, and the
    folder tree that the matching ``data=<name>`` preset reads under ``<data_dir>/<name>/``."""

    url: str | None
    archive: str | None
    tree: str
    howto: str = ""


SELFIE2ANIME_HOWTO = (
    "download selfie2anime.zip from the Google Drive link in the README of "
    "https://github.com/znxlwm/UGATIT-pytorch and unpack it there"
)

DATASETS: dict[str, Source] = {
    **{
        name: Source(_CYCLEGAN.format(name), f"{name}.zip", UNPAIRED_TREE)
        for name in ("horse2zebra", "summer2winter_yosemite")
    },
    **{
        name: Source(_PIX2PIX.format(name), f"{name}.tar.gz", SIDE_BY_SIDE_TREE)
        for name in ("facades", "edges2shoes", "edges2handbags")
    },
    "cat2dog": Source(
        "http://vllab.ucmerced.edu/hylee/DRIT/datasets/cat2dog.zip", "cat2dog.zip", UNPAIRED_TREE
    ),
    # StarGAN v2's link; dl=1 asks Dropbox for the file itself instead of its web page.
    "afhq": Source("https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1", "afhq.zip", DOMAINS_TREE),
    # StarGAN v2's CelebA-HQ (download.sh celeba-hq-dataset): {train,val}/{female,male}/
    "celeba_hq": Source(
        "https://www.dropbox.com/s/f7pvjij2xlpff59/celeba_hq.zip?dl=1",
        "celeba_hq.zip",
        "{train,val}/{female,male}/*.jpg",
    ),
    "cityscapes": Source(None, None, CITYSCAPES_TREE, CITYSCAPES_HOWTO),
    # CUT's Cityscapes: 256x256 JPEGs, A = photo, B = colour label map (`data=cityscapes_cut`)
    "cityscapes_cut": Source(None, None, CITYSCAPES_CUT_TREE, CITYSCAPES_CUT_HOWTO),
    # U-GAT-IT's data set is a Google Drive file (its README): no plain HTTP download.
    "selfie2anime": Source(None, None, UNPAIRED_TREE, SELFIE2ANIME_HOWTO),
}
