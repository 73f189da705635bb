"""The Streamlit dashboard over the marts (issue 6)."""
