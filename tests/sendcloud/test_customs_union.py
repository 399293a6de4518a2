"""Where the EU's customs and VAT area ends, for a parcel sent from the Netherlands (``customs_required``).

Each case is a fact from the Union Customs Code (art. 4), the VAT Directive (art. 6 and 7) or the Windsor
Framework, as docs/sendcloud.md ("Customs: where the EU ends") lists them.
"""

from __future__ import annotations

import pytest

from sendcloud_integration.sendcloud.customs_union import EU_MEMBER_STATES, customs_required


@pytest.mark.parametrize("country", sorted(EU_MEMBER_STATES))
def test_every_member_state_mainland_needs_no_customs(country: str) -> None:
    assert customs_required(country, "") is None


@pytest.mark.parametrize(
    ("country", "postal_code", "why"),
    [
        ("MC", "98000", "Monaco is in the Union's customs territory and treated as France for VAT"),
        ("FR", "98000", "Monaco addressed through the French postal system"),
        ("CY", "4500", "Cyprus, including the UK Sovereign Base Areas addressed as CY"),
        ("XI", "BT1 1AA", "Northern Ireland follows the EU's rules for goods (Windsor Framework)"),
        ("GB", "BT1 1AA", "a Northern Irish postcode with the GB code"),
        ("gb", "bt48 6dq", "lower case and spaces do not matter"),
        ("ES", "28001", "Madrid"),
        ("ES", "07001", "the Balearic Islands are in both areas"),
        ("PT", "9000-001", "Madeira is in both areas"),
        ("PT", "9500-001", "the Azores are in both areas"),
        ("DE", "27499", "near Heligoland, but the mainland"),
        ("IT", "00100", "Rome"),
        ("GR", "10431", "Athens"),
        ("FI", "00100", "Helsinki"),
        ("AT", "6991", "Jungholz and Mittelberg are in both areas"),
    ],
)
def test_inside_the_customs_and_vat_area(country: str, postal_code: str, why: str) -> None:
    assert customs_required(country, postal_code) is None, why


@pytest.mark.parametrize(
    ("country", "postal_code", "territory"),
    [
        # Outside the EU altogether.
        ("CH", "8001", "CH"),
        ("NO", "0150", "NO"),
        ("US", "10001", "US"),
        ("GB", "SW1A 1AA", "the United Kingdom (Great Britain)"),
        ("JE", "JE2 3AB", "JE"),
        ("GG", "GY1 1AA", "GG"),
        ("IM", "IM1 1AA", "IM"),
        ("GI", "GX11 1AA", "GI"),
        ("LI", "9490", "LI"),
        # In a customs union with the EU for some goods, but outside the VAT area.
        ("AD", "AD500", "AD"),
        ("SM", "47890", "SM"),
        ("TR", "34000", "TR"),
        ("VA", "00120", "VA"),
        # Danish and Dutch overseas territories.
        ("FO", "100", "FO"),
        ("GL", "3900", "GL"),
        ("AW", "", "AW"),
        ("CW", "", "CW"),
        ("SX", "", "SX"),
        ("BQ", "", "BQ"),
        # In the customs territory, outside the VAT area (VAT Directive art. 6(1)).
        ("ES", "35001", "the Canary Islands"),
        ("ES", "38001", "the Canary Islands"),
        ("IC", "35001", "the Canary Islands"),
        ("GR", "630 86", "Mount Athos"),
        ("GR", "63087", "Mount Athos"),
        ("FI", "22100", "the Åland Islands"),
        ("FI", "FI-22100", "the Åland Islands"),
        ("AX", "22100", "the Åland Islands"),
        ("IT", "22061", "Campione d'Italia"),
        ("IT", "22060", "Campione d'Italia"),
        ("FR", "97100", "a French overseas department or territory"),  # Guadeloupe
        ("FR", "97200", "a French overseas department or territory"),  # Martinique
        ("FR", "97300", "a French overseas department or territory"),  # French Guiana
        ("FR", "97400", "a French overseas department or territory"),  # Réunion
        ("FR", "97600", "a French overseas department or territory"),  # Mayotte
        ("FR", "97150", "a French overseas department or territory"),  # Saint-Martin
        ("GP", "97100", "Guadeloupe"),
        ("RE", "97400", "Réunion"),
        ("YT", "97600", "Mayotte"),
        ("MF", "97150", "Saint-Martin"),
        # Outside the customs territory and the VAT area (VAT Directive art. 6(2)).
        ("DE", "27498", "Heligoland"),
        ("DE", "78266", "Büsingen am Hochrhein"),
        ("ES", "51001", "Ceuta"),
        ("ES", "52001", "Melilla"),
        ("EA", "51001", "Ceuta and Melilla"),
        ("IT", "23041", "Livigno"),
        # French overseas countries and territories.
        ("FR", "98800", "a French overseas territory"),  # New Caledonia
        ("FR", "98714", "a French overseas territory"),  # French Polynesia
        ("FR", "97500", "a French overseas department or territory"),  # Saint-Pierre-et-Miquelon
        ("NC", "98800", "NC"),
        ("PF", "98714", "PF"),
        ("BL", "97133", "BL"),
        ("PM", "97500", "PM"),
    ],
)
def test_outside_needs_customs_and_says_where(country: str, postal_code: str, territory: str) -> None:
    assert customs_required(country, postal_code) == territory


def test_an_empty_country_needs_customs_rather_than_being_assumed_inside() -> None:
    assert customs_required("", "") == "an unknown country"
