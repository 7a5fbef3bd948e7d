"""The exported configs' Arrow schemas, built without importing `datasets` (issue 21: its
import was 1.3-1.8 s of a small export), carry exactly what ``datasets.Features`` gives."""

from __future__ import annotations

import pytest

from curate.export.features import arrow_schema, features_for
from curate.export.params import CONFIGS, FLAVOUR_CONFIGS, FLAVOURS


@pytest.mark.parametrize("config,flavour", [(c, f) for f in FLAVOURS
                                            for c in FLAVOUR_CONFIGS.get(f, CONFIGS)])
def test_the_schema_is_what_datasets_features_give(config: str, flavour: str) -> None:
    ours, theirs = arrow_schema(config, flavour), features_for(config, flavour).arrow_schema
    assert ours.equals(theirs, check_metadata=True)
    assert ours.metadata == theirs.metadata  # the same bytes in every file's footer


@pytest.mark.parametrize("orientation", [None, 1, 6])
def test_the_card_decodes_an_image_as_datasets_does(orientation: int | None) -> None:
    """The card's example rows decode images themselves (no `datasets` import): the same
    size and format as ``datasets.Image``, an EXIF-rotated JPEG turned upright included."""
    from io import BytesIO

    from datasets import Image as DatasetsImage
    from PIL import Image

    from curate.export.examples import _image

    picture, sink = Image.new("RGB", (6, 2), "red"), BytesIO()
    exif = picture.getexif()
    if orientation is not None:
        exif[0x0112] = orientation  # the EXIF Orientation tag
    picture.save(sink, "JPEG", exif=exif)
    ours = _image(sink.getvalue())
    theirs = DatasetsImage().decode_example({"bytes": sink.getvalue(), "path": None})
    assert (ours.size, ours.format, ours.mode) == (theirs.size, theirs.format, theirs.mode)
