"""A tool for the frontend protocol tests: it changes the session's state and
emits a CustomEvent, as a shopping-cart tool of a frontend would."""

from __future__ import annotations

from app.engine.tools import RunContext, tool


@tool
def add_to_cart(item: str, ctx: RunContext) -> str:
    """Put an item in the cart.

    Args:
        item: What to add.
    """
    cart = [*ctx.session_state.get("cart", []), item]
    ctx.session_state["cart"] = cart
    ctx.emit("cart_changed", {"items": cart})
    return f"{len(cart)} items in the cart"
