package dev.vhostdevice.vsock;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;

/**
 * The {@code --config FILE} format, as upstream's: a top-level {@code vms:} list of maps with the
 * {@link VmConfig#KEYS} (underscore keys; dashes are accepted too). Unlike upstream, unknown keys are refused.
 * Only this class touches SnakeYAML, so a daemon started without {@code --config} never loads it.
 */
final class ConfigFile {
    private ConfigFile() {
    }

    static List<VmConfig> read(Path file) {
        Object document;
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            LoaderOptions options = new LoaderOptions();
            options.setAllowDuplicateKeys(false);
            options.setMaxAliasesForCollections(10);
            document = new Yaml(new SafeConstructor(options)).load(reader);
        } catch (IOException e) {
            throw new IllegalArgumentException("--config " + file + ": cannot read: " + e.getMessage());
        } catch (YAMLException e) {
            throw new IllegalArgumentException("--config " + file + ": not valid YAML: "
                    + e.getMessage().replace('\n', ' '));
        }
        if (!(document instanceof Map<?, ?> top) || !(top.get("vms") instanceof List<?> vms)) {
            throw new IllegalArgumentException("--config " + file + ": expected a top-level 'vms:' list");
        }
        if (vms.isEmpty()) {
            throw new IllegalArgumentException("--config " + file + ": 'vms' is empty");
        }
        List<VmConfig> configs = new ArrayList<>(vms.size());
        for (int i = 0; i < vms.size(); i++) {
            String where = "--config " + file + " vms[" + i + "]";
            if (!(vms.get(i) instanceof Map<?, ?> entry)) {
                throw new IllegalArgumentException(where + ": expected a map of keys");
            }
            Map<String, String> values = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : entry.entrySet()) {
                Object value = e.getValue();
                if (value instanceof Map || value instanceof List) {
                    throw new IllegalArgumentException(where + ": " + e.getKey() + " must be a single value");
                }
                values.put(String.valueOf(e.getKey()).replace('-', '_'), value == null ? "" : String.valueOf(value));
            }
            configs.add(VmConfig.fromMap(values, where));
        }
        return configs;
    }
}
