"""Harvest constants: resources, page size, the cursor's starting point (constants only)."""

REFERENCE_RESOURCES = (
    "clients",
    "users",
    "projects",
    "tasks",
    "task_assignments",
    "user_assignments",
    "expense_categories",
)
PER_PAGE = 2000
EPOCH = "1970-01-01T00:00:00Z"
USER_AGENT = "pslake (https://github.com/pslake/pslake)"
