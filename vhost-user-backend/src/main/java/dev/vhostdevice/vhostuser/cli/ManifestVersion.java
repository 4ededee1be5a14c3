package dev.vhostdevice.vhostuser.cli;

import java.util.List;

/**
 * {@code --version} from the executable jar's manifest (Implementation-Title and -Version, set at packaging),
 * so the version is written in one place: the pom.
 */
public final class ManifestVersion {
    private ManifestVersion() {
    }

    /** The version lines of the jar holding {@code commandClass}; {@code name} if the manifest has no title. */
    public static List<String> of(Class<?> commandClass, String name) {
        Package pkg = commandClass.getPackage();
        String version = pkg.getImplementationVersion();
        String title = pkg.getImplementationTitle();
        return List.of(
                (title != null ? title : name) + " " + (version != null ? version : "(development build)"),
                "Java " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ")");
    }
}
