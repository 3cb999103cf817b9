"""Kernel constants become the names events carry, and back."""

from __future__ import annotations

import os

from opencws.model.names import capability_mask, capability_names, open_flag_bits, open_flag_names


def test_open_flags_are_sorted_names_with_the_access_mode():
    assert open_flag_names(os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == ("O_CREAT", "O_TRUNC", "O_WRONLY")
    assert open_flag_names(0) == ("O_RDONLY",)
    assert open_flag_names(os.O_RDWR | os.O_CLOEXEC) == ("O_CLOEXEC", "O_RDWR")


def test_unknown_open_flag_bits_are_kept_as_a_decimal_string():
    assert open_flag_names(os.O_RDONLY | (1 << 30)) == ("O_RDONLY", str(1 << 30))


def test_open_flag_names_convert_back_to_the_same_bits():
    for flags in (0, os.O_RDWR | os.O_APPEND, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 1 << 30):
        assert open_flag_bits(open_flag_names(flags)) == flags


def test_capabilities_are_sorted_names_and_an_empty_set_is_empty():
    assert capability_names(0) == ()
    mask = (1 << 21) | (1 << 0) | (1 << 7)
    assert capability_names(mask) == ("CAP_CHOWN", "CAP_SETUID", "CAP_SYS_ADMIN")
    assert capability_mask(capability_names(mask)) == mask
