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

# SceneParsing's ADE20K (SPADE's README links this archive; its top folder ADEChallengeData2016/
# becomes <data_dir>/ade20k/). The two .txt files are the class and scene lists; not read.
ADE20K_TREE = (
    "images/{training,validation}/ADE_*.jpg\n"
    "annotations/{training,validation}/ADE_*.png   (ids 0 = other, 1..150 = classes)\n"
    "objectInfo150.txt, sceneCategories.txt"
)
COCO_STUFF_TREE = (
    "train_img/*.jpg     (train2017.zip)\n"
    "train_label/*.png   (stuffthingmaps_trainval2017.zip: train2017/; ids 0..181, 255 = unlabelled)\n"
    "train_inst/*.png    (instance maps written by datasets/coco_generate_instance_map.py of NVlabs/SPADE)\n"
    "val_img/, val_label/, val_inst/   (the same from val2017)"
)
COCO_STUFF_HOWTO = (
    "COCO-Stuff comes as four archives and SPADE's instance maps must be generated: download "
    "http://images.cocodataset.org/zips/train2017.zip, http://images.cocodataset.org/zips/val2017.zip, "
    "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip and "
    "http://images.cocodataset.org/annotations/annotations_trainval2017.zip (see "
    "https://github.com/nightrome/cocostuff), unpack them into the layout below, then run "
    "datasets/coco_generate_instance_map.py of https://github.com/NVlabs/SPADE (needs pycocotools) "
    "once per split to write <split>_inst/ from the instances_<split>2017.json annotations"
)


@dataclass(frozen=True)
class Source:
    """A named data set: its archive URL (None: manual download), archive file name, and the
    folder tree that the matching ``data=<name>`` preset reads under ``<data_dir>/<name>/``.
    ``howto``: the manual steps; ``manual``: why there is no automatic download (url None)."""

    url: str | None
    archive: str | None
    tree: str
    howto: str = ""
    manual: str = "login required"


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
    "selfie2anime": Source(None, None, UNPAIRED_TREE, SELFIE2ANIME_HOWTO, manual="a Google Drive file"),
    # SPADE's label-map data sets (`data=ade20k`, `data=coco_stuff`; Cityscapes is `cityscapes`)
    "ade20k": Source(
        "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        "ADEChallengeData2016.zip",
        ADE20K_TREE,
    ),
    "coco_stuff": Source(
        None, None, COCO_STUFF_TREE, COCO_STUFF_HOWTO, manual="several archives and a conversion step"
    ),
}
