"""The seeds' domain tables, written from the streams (issue #9). One module per table family
holds its SQL; this package's routing (db/domain/routing.py) runs it.

Every statement takes one parameter, `$1`: a JSON array of records (an event's envelope fields
and its validated event_data, or a snapshot), read with jsonb_to_recordset. SQL text is constant:
no statement is built from event data.
"""
