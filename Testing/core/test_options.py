"""The options schema: one default per choice, one-line errors naming the choice, labels for GUIs."""

from __future__ import annotations

import pickle

import pytest

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import (
    ALL_CHOICES,
    AXIS,
    COLOUR,
    MODE,
    REGISTRATION,
    Choice,
    FusionOptions,
    fusion_options,
)


@pytest.mark.parametrize("choice", ALL_CHOICES, ids=lambda c: c.name)
def test_every_choice_has_one_default_among_its_values_and_help(choice):
    assert choice.default in choice.values and len(set(choice.values)) == len(choice.values)
    assert choice.help
    assert choice.check(choice.default) == choice.default


def test_a_bad_value_is_a_one_line_error_naming_the_choice_and_the_values():
    with pytest.raises(MedFusionError) as info:
        REGISTRATION.check("elastic")
    message = str(info.value)
    assert "\n" not in message and "registration" in message and "'elastic'" in message
    assert all(v in message for v in REGISTRATION.values)


def test_a_default_outside_the_values_is_refused_when_the_schema_is_written():
    with pytest.raises(ValueError, match="default"):
        Choice("x", ("a", "b"), "c", "help")


def test_labels_are_for_display_only_and_map_back_to_values():
    assert AXIS.label(2) == "k (axial)" and AXIS.value_of_label("k (axial)") == 2
    assert MODE.label("volume") != "volume" and MODE.value_of_label(MODE.label("volume")) == "volume"
    assert COLOUR.label("hot") == "hot"  # no label: the value itself
    with pytest.raises(MedFusionError):
        AXIS.value_of_label("z (axial)")


def test_fusion_options_validate_on_construction_and_travel_as_plain_values():
    with pytest.raises(MedFusionError, match="unknown mode"):
        FusionOptions(mode="3d")
    with pytest.raises(MedFusionError, match="unknown modality"):
        FusionOptions(modalities=("ct", "xray"))
    options = FusionOptions(method="max", modalities=["ct", "mr"], colour="hot")
    assert options.modalities == ("ct", "mr")  # hashable, picklable: a Dask task argument
    assert pickle.loads(pickle.dumps(options)) == options
    assert options.as_dict()["modalities"] == ["ct", "mr"] and options.as_dict()["registration"] == "none"


def test_a_user_error_is_one_line_whatever_text_it_wraps():
    from MedFusionLib.core.errors import InputError

    err = InputError("f.nii: expected 24 bytes, got 0 bytes from f.nii\n - could the file be damaged?")
    assert str(err) == "f.nii: expected 24 bytes, got 0 bytes from f.nii - could the file be damaged?"


def test_the_colour_choice_names_exactly_the_colour_maps_defined():
    from MedFusionLib.core.colour import COLOUR_MAPS
    from MedFusionLib.core.options import COLOUR_MAP_NAMES

    assert set(COLOUR_MAP_NAMES) == set(COLOUR_MAPS)


def test_the_guis_start_with_the_clinical_colour_rule_and_files_stay_grey():
    from MedFusionLib.core.options import colour_for_inputs

    assert COLOUR.default == "none" and COLOUR.shown_default == "auto"
    assert MODE.shown_default == MODE.default  # no GUI default of its own: the same
    assert colour_for_inputs("auto", has_functional=True) == "auto"  # T1 + PET: the colour overlay
    assert colour_for_inputs("auto", has_functional=False) == "none"  # CT + MR: the grey fused image
    assert colour_for_inputs("hot", has_functional=False) == "hot"  # a map chosen by name is always applied
    with pytest.raises(MedFusionError, match="unknown colour"):
        colour_for_inputs("warm", has_functional=True)
    with pytest.raises(ValueError, match="default"):
        Choice("x", ("a", "b"), "a", "help", gui_default="c")


def test_keyword_choices_replace_given_options_and_an_unknown_key_is_named():
    base = FusionOptions(method="max", registration="rigid")
    chosen = fusion_options(base, mode="volume", modalities=["ct", "mr"])
    assert (chosen.method, chosen.mode, chosen.registration, chosen.modalities) == (
        "max",
        "volume",
        "rigid",
        ("ct", "mr"),
    )
    assert base.mode == MODE.default  # the given options are not changed
    with pytest.raises(MedFusionError, match="unknown fusion option regsitration") as err:
        fusion_options(regsitration="rigid")
    assert "\n" not in str(err.value) and "registration" in str(err.value)
    with pytest.raises(MedFusionError, match="mode"):
        fusion_options(base, mode="sideways")
