"""An input the MoE engine refuses shows its message under its field, as on the Bands and Plan
tabs (found in tmux: expert tok '20B,15B' for a 4-expert model was only in the form's status
line, with no field marked)."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from app.widgets.form_field import FormField
from tests.tui.conftest import settle_tab, text_of

pytest.importorskip("app.tabs.moe")
from app.tabs.moe import MoeTab  # noqa: E402


async def test_wrong_number_of_expert_token_counts_is_marked_at_its_field(app_factory):
    app = app_factory(initial_tab="moe")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(MoeTab)
        await settle_tab(pilot, tab)
        app.query_one("#input-m_expert_tokens", Input).value = "20B,15B"  # 2 counts, 4 experts
        await settle_tab(pilot, tab)
        field = app.query_one("#field-m_expert_tokens", FormField)
        assert field.has_class("-invalid")
        assert "2 values for 4 experts" in text_of(field.query_one(".field-error"))
        assert app.query_one("#moe-body").has_class("-stale")
        app.query_one("#input-m_expert_tokens", Input).value = "20B,15B,12B,12B"
        await settle_tab(pilot, tab)
        assert not field.has_class("-invalid") and not app.query_one("#moe-body").has_class("-stale")
        assert app.failures == []
