"""`wayline report`: a tenant's journeys over a time range as one self-contained HTML file to mail around.

requests builds what each RPC is asked (the defaults are documented there), collect calls them through the
gateway with one key and keeps the answers as the console's JSON, document writes the file around the
console's report bundle, and command is the typer front end.
"""
