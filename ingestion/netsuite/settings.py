"""NetSuite constants: the SuiteQL tables pslake reads, their keys, cursors, types and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SUITEQL_PATH = "/services/rest/query/v1/suiteql"
PAGE_SIZE = 1000  # SuiteQL's largest page
MAX_RESULTS = 100_000  # SuiteQL answers 400 once offset + limit passes this
# rows one keyset window walks by offset before the next window: small enough that offsets stay
# shallow, large enough that SuiteQL counts totalResults (up to 100,000 rows) once per 10 pages
WINDOW_ROWS = 10_000
BATCH_PAGES = 50  # 50k records per DuckDB parse

# The cursor: the table's modification date at full precision, selected beside ``t.*`` with
# TO_CHAR (SuiteQL renders timestamps to the minute) and sent back with TO_TIMESTAMP.
CURSOR = "modified_at"
STAMP_SQL = "YYYY-MM-DD HH24:MI:SS"
STAMP = "%Y-%m-%d %H:%M:%S"
EPOCH = "1970-01-01 00:00:00"

# The account's date format (Set Preferences > Date Format); timestamps add the time of day.
DATE_FORMAT = "%m/%d/%Y"
TIME_OF_DAY = " %I:%M %p"

ID = "BIGINT"
MONEY = "DECIMAL(18,4)"
HOURS = "DECIMAL(12,4)"
QUANTITY = "DECIMAL(18,4)"
FX = "DECIMAL(24,10)"
SHARE = "DECIMAL(12,6)"
COUNT = "INTEGER"
DATE = "DATE"  # parsed with the account's date format
TIMESTAMP = "TIMESTAMP"  # parsed with the date format plus TIME_OF_DAY (minute precision)


@dataclass(frozen=True)
class Table:
    """One SuiteQL table as pslake reads it into ``raw_netsuite``.

    Attributes:
        name: The SuiteQL table, also the raw table and the dlt resource.
        key: NetSuite's key columns; the raw table merges on them.
        modified: The column the cursor is read from.
        columns: Column -> DuckDB type, beyond the key (``BIGINT``) and ``modified``.
    """

    name: str
    key: tuple[str, ...] = ("id",)
    modified: str = "lastmodifieddate"
    columns: Mapping[str, str] = field(default_factory=dict)


def _table(name: str, /, *ids: str, key: tuple[str, ...] = ("id",),
           modified: str = "lastmodifieddate", **columns: str) -> Table:
    return Table(name, key, modified, {**dict.fromkeys(ids, ID), **columns})


TABLES: dict[str, Table] = {t.name: t for t in (
    _table("subsidiary", "currency", "parent"),
    _table("currency"),
    _table("currencyrate", "basecurrency", "transactioncurrency", exchangerate=FX,
           effectivedate=DATE),
    _table("accountingperiod", "parent", startdate=DATE, enddate=DATE, closedondate=DATE),
    _table("term", daysuntilnetdue=COUNT),
    _table("department"),
    _table("item"),
    _table("customer", "parent", "subsidiary", "currency", "terms", datecreated=TIMESTAMP),
    _table("job", "customer", "parent", "subsidiary", "entitystatus", "projectmanager",
           "currency", startdate=DATE, enddate=DATE, projectedenddate=DATE,
           estimatedrevenue=MONEY, estimatedcost=MONEY, estimatedlaborhours=HOURS,
           datecreated=TIMESTAMP),
    _table("employee", "department", "subsidiary", "supervisor", "currency", laborcost=MONEY,
           custentity_utilization_target=SHARE, hiredate=DATE, releasedate=DATE,
           datecreated=TIMESTAMP),
    _table("timebill", "employee", "customer", "item", "subsidiary", "postingperiod",
           "invoice", "approvalstatus", hours=HOURS, rate=MONEY, trandate=DATE,
           datecreated=TIMESTAMP),
    _table("transaction", "entity", "job", "subsidiary", "currency", "postingperiod", "terms",
           exchangerate=FX, foreigntotal=MONEY, foreignamountpaid=MONEY,
           foreignamountremaining=MONEY, trandate=DATE, duedate=DATE, closedate=DATE,
           createddate=TIMESTAMP),
    _table("transactionline", "transaction", "id", "entity", "item", "subsidiary",
           "department", "employee", key=("uniquekey",), modified="linelastmodifieddate",
           linesequencenumber=COUNT, quantity=QUANTITY, rate=MONEY, netamount=MONEY,
           foreignamount=MONEY),
    _table("previoustransactionlink", key=("previousdoc", "nextdoc"), amount=MONEY,
           foreignamount=MONEY, linkdate=DATE),
    _table("customrecord_pslake_rate_card", "custrecord_rc_subsidiary",
           "custrecord_rc_customer", "custrecord_rc_currency", custrecord_rc_rate=MONEY,
           custrecord_rc_effective_from=DATE, custrecord_rc_effective_to=DATE),
    # NetSuite's own record of deletions (recordtype + recordid): the deletion mark.
    _table("deletedrecord", "recordid", modified="deleteddate", recordtype="VARCHAR",
           name="VARCHAR"),
)}
RESOURCES = tuple(TABLES)
