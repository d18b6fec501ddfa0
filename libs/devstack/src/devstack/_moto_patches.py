"""Fixes applied to moto inside the emulator's server process (``devstack.moto_server``).

``TransactWriteItems``: moto 5 keeps a rollback copy of a transaction's table by deep-copying
the whole table once per item of the transaction, so a 100-item transaction on a table of a
few thousand items takes seconds (DynamoDB answers in milliseconds): the services' writes time
out and a transactional design could not be tested or measured. The patch keeps moto's own
implementation (conditions, ``CancellationReasons``, ``ReturnValuesOnConditionCheckFailure``,
validation) and changes only the rollback copy: before the transaction runs, the items it
names are copied; if it fails (cancelled, or refused part-way) exactly those items are put
back. A transaction cannot name one item twice, and moto serves one request at a time
(``moto_server``), so restoring the named items restores the table.

Condition expressions: moto parses every condition three times per item of a transaction (the
request's validation, the transaction's check, the put's check), each time lexing the text with
regular expressions compiled anew; that parsing was three quarters of a conditional write's
time, so conditional writes ran at a third of the unconditional rate. The syntax tree is a pure
function of (expression, names, the set of value placeholders): moto's passes over it look at
the kinds of nodes, never at a value. The tree is memoised per those (bounded, least recently
used) and each parse puts its own values into a copy before moto turns it into operations; the
lexing of an expression text is memoised by the text. Errors are not memoised.

Item construction: moto checks the 400 KB item limit on every attribute it sets while building
an item, each time summing the size of every attribute already set, so building an item costs
the square of its attribute count: an 18-attribute product item took ten times as long as a
4-attribute one, and an unconditional ``BatchWriteItem`` of the search index's product items ran
at 45 % of the rate of small items (DynamoDB charges by size, linearly). The patch builds the
attributes and checks the total size once, against the same limit with the same error; later
``__setitem__`` calls (``UpdateItem``) keep moto's check.

Request parsing: moto turns a request's JSON into parameters by walking botocore's model, and for
every typed value (``{"S": "x"}``) it looks up each of ``AttributeValue``'s ten members and
dispatches on its type by name; that walk was two fifths of a transaction of product items and
made the emulator's cost per attribute, not per byte. The patch parses ``AttributeValue`` directly
with the same rules (strings, numbers and booleans as sent, ``B``/``BS`` base64-decoded, ``L`` and
``M`` recursively, members in the model's order, unknown and null members dropped); every other
shape goes through moto's walk.

Queries: moto answered every ``Query`` by listing the whole table sorted by key (every item, a
sort of DynamoType objects) and then keeping the partition asked for, so a read of one token's
postings cost as much as a scan of 12,000 items, which DynamoDB never does. A query of the
table reads its partition's items only (the same items moto kept, sorted by moto as before); a
query of an index still reads every item, without the whole-table sort its own sort by the
index's key makes useless. Results, order, paging and ``ScannedCount`` are moto's.

The rollback copy of a ``Put``, ``Delete`` or ``ConditionCheck`` is the stored item object itself:
moto's put replaces the item object and its delete removes it, neither changes the old object;
only an ``Update`` changes an item in place, so its item is still deep-copied.

Puts inside a transaction: moto checks each ``Put``'s condition against the stored item, then
calls its own ``put_item`` with the same condition, which looks the item up and evaluates the
condition a second time (a third of the time of a conditional transactional put of a product
item). Nothing can change the item between the two (moto serves one request at a time, and a
transaction cannot name an item twice), so the second evaluation decides as the first did: the
put inside a transaction is made without it. Validation, the item's construction and the write
are moto's.

Glue: ``UpdateTable`` honours ``VersionId`` (optimistic locking, as AWS Glue does), which the
lake's Iceberg commits rely on; see ``_moto_glue``.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections import OrderedDict, deque
from types import SimpleNamespace
from typing import Any

from devstack import _moto_glue

__all__ = ["apply"]

_state = {"applied": False}
#: What the patches replaced, for the tests that compare the two.
_originals: dict[str, Any] = {}


def _deepcopy_except_tables(table_type: type, value: Any, *args: Any) -> Any:
    # moto's transact_write_items deep-copies each Table it touches; hand back the table itself
    # (its rollback then re-installs the same object) and restore the named items instead.
    if isinstance(value, table_type):
        return value
    return copy.deepcopy(value, *args)


def _named_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(table, hash key, range key, copy of the stored item or None) per named item."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: list[tuple[Any, ...]] = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            attrs = op["Item"] if "Item" in op else op["Key"]
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_key, range_key)
        except Exception:  # noqa: S112 - a malformed entry: moto's own code refuses it
            continue
        # Only an Update changes the stored object in place (see the module docstring).
        kept = copy.deepcopy(current) if "Update" in entry else current
        saved.append((table, hash_key, range_key, kept))
    return saved


def _restore(saved: list[tuple[Any, ...]]) -> None:
    for table, hash_key, range_key, item in reversed(saved):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        elif item is None:
            table.items[hash_key].pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item


# Distinct (expression, names, value placeholders) kept; a service uses a handful.
_PARSE_CACHE_SIZE = 4096


def _memoise_parser() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser as Parser

    parse, lex = Parser.parse, Parser._lex_condition_expression
    eav = Parser.Kind.EXPRESSION_ATTRIBUTE_VALUE
    trees: OrderedDict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = OrderedDict()
    lexed: dict[str, tuple[Any, ...]] = {}

    def syntax_tree(self: Any) -> Any:
        # moto's ``parse`` up to the tree it turns into operations (same passes, same checks).
        nodes = self._lex_condition_expression()
        nodes = self._parse_paths(nodes)
        nodes = self._apply_functions(nodes)
        nodes = self._apply_comparator(nodes)
        nodes = self._apply_in(nodes)
        nodes = self._apply_between(nodes)
        nodes = self._apply_parens_and_booleans(nodes)
        node = nodes[0]
        self._assert_no_redundant_parentheses(node)
        return node

    def with_values(node: Any, values: dict[str, Any]) -> Any:
        if node.kind == eav:
            return node._replace(value=values[node.text])
        if not node.children:
            return node
        return node._replace(children=[with_values(c, values) for c in node.children])

    def cached_parse(self: Any) -> Any:
        values = self.expression_attribute_values
        if not self.condition_expression or not isinstance(values, dict | None):
            return parse(self)
        # The tree depends on the text, the names and which values exist, never on the values
        # themselves (moto's passes look only at the kinds of nodes): it is kept per those, and
        # each parse puts its own values into it.
        key = (
            self.condition_expression,
            repr(self.expression_attribute_names),
            *sorted(values or ()),
        )
        hit = trees.get(key)
        if hit is None:
            node = syntax_tree(self)
            hit = (node, self._find_literals(node), self._find_expr_attr_values(node))
            trees[key] = hit
            if len(trees) > _PARSE_CACHE_SIZE:
                trees.popitem(last=False)
        else:
            trees.move_to_end(key)
            node = with_values(hit[0], values or {})
        self.expr_attr_names_found.extend(hit[1])
        self.expr_attr_values_found.extend(hit[2])
        return self._make_op_condition(node)

    def cached_lex(self: Any) -> Any:
        text = self.condition_expression
        nodes = lexed.get(text)
        if nodes is None:
            nodes = tuple(lex(self))  # namedtuples: immutable, safe to share
            if len(lexed) < _PARSE_CACHE_SIZE:
                lexed[text] = nodes
        return deque(nodes)

    _originals["condition_parse"] = parse
    Parser.parse = cached_parse  # type: ignore[method-assign]
    Parser._lex_condition_expression = cached_lex  # type: ignore[method-assign]


# moto's item size limit (dynamo_type.LimitedSizeDict: "between 409 and 410KB" measured, 405,000
# bytes enforced); repeated here because moto keeps it inline.
_ITEM_SIZE_LIMIT = 405_000


def _linear_item_init() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        converted = {key: DynamoType(value) for key, value in attrs.items()}
        # The total moto's per-attribute checks end at (sizes only add up).
        if sum(bytesize(k) + v.size() for k, v in converted.items()) > _ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict(converted)  # its __init__ uses dict.update: no re-check

    Item.__init__ = init  # type: ignore[method-assign]


# AttributeValue's members in the model's order, by how moto's JSON parser treats them.
_AV_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_AV_AS_SENT = frozenset(("S", "N", "NULL", "BOOL"))


def _fast_attribute_values() -> None:
    from moto.core.parse import BaseJSONParser

    walk = BaseJSONParser._parse_structure

    def attribute_value(parser: Any, value: Any) -> Any:
        if value is None:
            return None
        if len(value) == 1:  # the common case: one member of a scalar type
            ((name, raw),) = value.items()
            if name in _AV_AS_SENT and raw is not None:
                return parser.MAP_TYPE(((name, raw),))
        out = parser.MAP_TYPE()
        for name in _AV_MEMBERS:
            raw = value.get(name)
            if raw is None:
                continue
            if name in _AV_AS_SENT:
                out[name] = raw
            elif name == "B":
                out[name] = parser._blob_parser(raw)
            elif name in ("SS", "NS"):
                out[name] = list(raw)
            elif name == "BS":
                out[name] = [parser._blob_parser(v) for v in raw]
            elif name == "L":
                out[name] = [attribute_value(parser, v) for v in raw]
            else:  # M
                m = parser.MAP_TYPE()
                for key, v in raw.items():
                    m[key] = attribute_value(parser, v)
                out[name] = m
        return out

    def is_attribute_value(shape: Any) -> bool:
        flag = shape.__dict__.get("_devstack_attribute_value")
        if flag is None:  # once per shape object: DynamoDB's (and Streams') AttributeValue
            flag = shape.name == "AttributeValue" and tuple(shape.members) == _AV_MEMBERS
            shape._devstack_attribute_value = flag
        return bool(flag)

    def parse_structure(self: Any, shape: Any, value: Any) -> Any:
        if is_attribute_value(shape):
            return attribute_value(self, value)
        return walk(self, shape, value)  # type: ignore[no-untyped-call]

    _originals["parse_structure"] = walk

    BaseJSONParser._parse_structure = parse_structure  # type: ignore[method-assign]


def _partition_queries() -> None:
    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    reading = threading.local()  # (table, partition key or None for an index) during a query

    def items_for_query(self: Any) -> list[Any]:
        current = getattr(reading, "query", None)
        if current is None or current[0] is not self:
            return all_items(self)
        key = current[1]
        if key is None:  # an index: moto sorts the matches by the index's full key after
            parts = self.items.values()
            if not self.range_key_attr:
                return list(parts)
            return [item for part in parts for item in part.values()]
        part = self.items.get(key)  # a DynamoType: hashed and compared by its cast value
        if part is None:
            return []
        return list(part.values()) if self.range_key_attr else [part]

    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index = kwargs.get("index_name") if len(args) < 7 else args[6]
        reading.query = (self, None if index else hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            reading.query = None

    _originals["query"], _originals["all_items"] = query, all_items
    Table.all_items = items_for_query  # type: ignore[method-assign]
    Table.query = partition_query  # type: ignore[method-assign]


def _single_check_in_transactions(models: Any, during: threading.local) -> None:
    put_item = models.DynamoDBBackend.put_item

    @functools.wraps(put_item)
    def put_once(
        self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kw: Any
    ) -> Any:
        if getattr(during, "transaction", False) and not args:
            # transact_write_items has just checked this condition on this very item.
            kw = {**kw, "condition_expression": None}
        return put_item(self, table_name, item_attrs, *args, **kw)

    _originals["put_item"] = put_item
    models.DynamoDBBackend.put_item = put_once


def apply() -> None:
    """Install the patches (idempotent). Call before the server handles a request."""
    if _state["applied"]:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items
    during = threading.local()

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _named_items(self, transact_items)
        during.transaction = True
        try:
            original(self, transact_items)
        except BaseException:
            _restore(saved)
            raise
        finally:
            during.transaction = False

    # Only transact_write_items and update_item use ``copy`` in that module; update_item copies
    # one item, which the shim still deep-copies.
    models.copy = SimpleNamespace(  # type: ignore[attr-defined,assignment]
        deepcopy=functools.partial(_deepcopy_except_tables, Table)
    )
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _single_check_in_transactions(models, during)
    _memoise_parser()
    _linear_item_init()
    _fast_attribute_values()
    _partition_queries()
    _moto_glue.apply()
    _state["applied"] = True
