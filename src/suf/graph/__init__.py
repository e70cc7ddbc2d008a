"""One model graph, four backends: reference (cleartext), dealer (masks, keys), party (masked
values, one key, the transport) and plan (shapes only, predicted costs)."""
