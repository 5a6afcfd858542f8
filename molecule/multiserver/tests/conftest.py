def pytest_collection_modifyitems(items):
    # test_zz_* removes servers: it runs after every file's cases (test_tool_pins.py included).
    items.sort(key=lambda item: item.name.startswith("test_zz"))
