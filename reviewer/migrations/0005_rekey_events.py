"""Events get the identity every path agrees on (records.event_identity), and TwelveLabs
segments their metadata field; decisions stay on their events.

The old key mixed exact seconds with display times, so a CSV or JSON re-import of a
batch's own export looked like new events. The functions are copied here, frozen.
"""

import hashlib
import json
from collections import Counter

from django.db import migrations


def _identity(category, start, end, label):
    end = start if end is None else end
    whole = [None if value is None else int(value) for value in (start, end)]
    return json.dumps([category, *whole, "" if label == category else label], ensure_ascii=False)


def rekey(apps, schema_editor):
    Event = apps.get_model("reviewer", "Event")
    events = Event.objects.order_by("item_id", "position", "id").values_list(
        "id", "item_id", "category", "start_seconds", "end_seconds", "label", "key"
    )
    changed, current_item, seen = [], None, Counter()
    for pk, item_id, category, start, end, label, old_key in events.iterator(chunk_size=2000):
        if item_id != current_item:
            current_item, seen = item_id, Counter()
        base = hashlib.sha1(_identity(category, start, end, label).encode()).hexdigest()
        count = seen[base]
        seen[base] += 1
        key = base if count == 0 else f"{base}-{count}"
        if key != old_key:
            changed.append((pk, key))
    # Two passes: a new key may be another event's old key within the same item.
    for pk, _ in changed:
        Event.objects.filter(pk=pk).update(key=f"rekey-{pk}")
    for pk, key in changed:
        Event.objects.filter(pk=pk).update(key=key)


def twelvelabs_metadata(apps, schema_editor):
    Event = apps.get_model("reviewer", "Event")
    for event in Event.objects.filter(batch__provider="twelvelabs").only("id", "raw").iterator(chunk_size=2000):
        metadata = event.raw.get("metadata") if isinstance(event.raw, dict) else None
        if isinstance(metadata, dict) and metadata:
            Event.objects.filter(pk=event.pk).update(metadata=metadata)


class Migration(migrations.Migration):
    dependencies = [("reviewer", "0004_provider_fields")]

    operations = [
        migrations.RunPython(rekey, migrations.RunPython.noop),
        migrations.RunPython(twelvelabs_metadata, migrations.RunPython.noop),
    ]
