"""Data specs: ``FORMAT:ROOT`` strings that name a dataset on disk, resolved to AVItem lists.

One reader per format, each ``(root, split) -> list[AVItem]`` (an :class:`ItemList`, whose ``report``
says what was excluded and why), registered in :data:`READERS`:

========== =============================================== ==========================================
format     dataset                                         module (layout in its docstring)
========== =============================================== ==========================================
synth      the built-in synthetic benchmark                :mod:`vssl.data.formats.synth`
vggsound   VGGSound training clips; ``vssl prepare`` output :mod:`vssl.data.formats.vggsound`
vggss      VGG-SS test set                                 :mod:`vssl.data.formats.vggss`
flickr     Flickr-SoundNet test set                        :mod:`vssl.data.formats.flickr`
is3        IS3 / IS3+ two-source images                    :mod:`vssl.data.formats.is3`
avsbench   AVSBench S4 or MS3                              :mod:`vssl.data.formats.avsbench`
slavc      SLAVC extended VGG-SS / Flickr (+ non-audible)  :mod:`vssl.data.formats.slavc`
folder     a plain folder of image + audio pairs           :mod:`vssl.data.formats.folder`
========== =============================================== ==========================================

Common rules. Boxes are normalised ``(xmin, ymin, xmax, ymax)`` of the full frame; annotation defects
follow :mod:`vssl.data.formats.boxes` (reported, never silently repaired). Splits follow
:mod:`vssl.data.formats.layout`: an id list ``ROOT/{split}.txt`` always works. A test set (vggss,
flickr, is3, avsbench, slavc) with a missing frame or audio file is an error; a training set
(vggsound, folder) leaves such items out and reports them.

Classes, for offscreen negatives (an item borrows the audio of an item whose ``label`` is not among
its ``classes``): ``label`` is the sounding class where the dataset names one and ``classes`` every
class known to be visible. VGG-SS: its ``class``. VGGSound: the class of ``vggsound.csv`` when present.
IS3: the sounding object's name, and ``classes`` both objects of the image. AVSBench S4: the video's
category (MS3 has none). Flickr-SoundNet, SLAVC's non-audible pairs and plain folders name no class
(``label`` None, ``classes`` empty).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vssl.data.formats.avsbench import read_avsbench
from vssl.data.formats.flickr import read_flickr
from vssl.data.formats.folder import read_folder
from vssl.data.formats.is3 import read_is3
from vssl.data.formats.report import Issue, ItemList, ReadReport
from vssl.data.formats.slavc import read_slavc
from vssl.data.formats.synth import read_synth
from vssl.data.formats.vggsound import read_vggsound
from vssl.data.formats.vggss import read_vggss
from vssl.data.items import AVItem
from vssl.errors import DatasetError

__all__ = ["READERS", "Issue", "ItemList", "ReadReport", "read_items"]

READERS: dict[str, Callable[[Path, str], list[AVItem]]] = {
    "synth": read_synth,
    "vggsound": read_vggsound,
    "vggss": read_vggss,
    "flickr": read_flickr,
    "is3": read_is3,
    "avsbench": read_avsbench,
    "slavc": read_slavc,
    "folder": read_folder,
}


def read_items(spec: str, split: str) -> list[AVItem]:
    """Items of ``split`` of the dataset named by ``spec`` (e.g. ``synth:./vssl-demo/data``, ``vggss:/data/vggss``)."""
    fmt, sep, root = spec.partition(":")
    if not sep or not root:
        raise DatasetError(f"data spec {spec!r} is not of the form FORMAT:ROOT (formats: {sorted(READERS)})")
    if fmt not in READERS:
        raise DatasetError(f"data spec {spec!r}: unknown format {fmt!r}; known: {sorted(READERS)}")
    items = READERS[fmt](Path(root).expanduser(), split)
    if not items:
        report = getattr(items, "report", None)
        detail = f" ({report.summary()})" if report is not None else ""
        raise DatasetError(f"data spec {spec!r}: split {split!r} has no items{detail}")
    return items
